"""OmniSR: parameter counts of the released models (spandrel's and the paper's), spandrel's
outputs reproduced from converted weights on odd sizes, detection of every variant, the state
dict's junk and buffers, bf16, any input size.

The fixture omnisr_golden.npz was written by spandrel 0.4.2's OmniSR under CPU torch
(tests/data/make_omnisr_golden.py); torch is not needed here.
"""

import json
import pathlib

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr.interop import torch_io
from jaxsr.interop import variables as interop_variables
from jaxsr.interop.families import omnisr as family
from jaxsr.models import layers
from jaxsr.models import omnisr
from jaxsr.models import swinir

from tests import utils

DATA = pathlib.Path(__file__).parent / "data"
VARIANTS = ("x2", "x3", "x4", "x1")  # make_omnisr_golden.VARIANTS
RELEASED = {"released_x2": 2, "released_x3": 3, "released_x4": 4}
PAPER_COUNTS_K = {"released_x2": 772, "released_x3": 780, "released_x4": 792}
KEY = jax.random.key(0, impl="rbg")


@pytest.fixture(scope="module")
def golden():
  return dict(np.load(DATA / "omnisr_golden.npz"))


def _state_dict(golden, name):
  prefix = f"{name}/sd/"
  return {k[len(prefix):]: v.astype(np.float32) for k, v in golden.items()
          if k.startswith(prefix)}


def _converted(golden, name):
  """(model, variables) of a golden variant, through detect, to_jaxsr and the generic mapper."""
  state_dict = _state_dict(golden, name)
  hparams = family.detect(state_dict)
  model = omnisr.OmniSR(**hparams)
  x = golden[f"{name}/input_0"]
  like = jax.eval_shape(lambda: model.init(KEY, x))
  variables = interop_variables.state_dict_to_variables(family.to_jaxsr(state_dict, hparams),
                                                        like)
  return model, variables


def _inputs(golden, name):
  i = 0
  while f"{name}/input_{i}" in golden:
    yield golden[f"{name}/input_{i}"], golden[f"{name}/output_{i}"]
    i += 1


def _thop_skipped(params) -> int:
  """Parameters the paper's counter (thop) skipped: the relative position tables, the
  LayerNorm2d's (every OSA-block norm but the spatial attentions' nn.LayerNorm) and the channel
  attentions' temperatures."""
  skipped = 0
  for path, leaf in flax.traverse_util.flatten_dict(params).items():
    layer = next((p for p in path if p.startswith("layer_")), "")
    if ("rel_pos_bias" in path or path[-1] == "temperature"
        or ("norm" in path and layer not in ("layer_2", "layer_8"))):
      skipped += int(np.prod(leaf.shape))
  return skipped


@pytest.mark.parametrize("label", sorted(RELEASED))
def test_released_models_have_spandrels_and_the_papers_parameter_counts(label, golden):
  model = omnisr.OmniSR(scale=RELEASED[label])  # The defaults are the released model's.
  shapes = jax.eval_shape(lambda k: model.init(k, jnp.zeros((1, 16, 16, 3))), KEY)["params"]
  count = layers.count_params(shapes)
  assert count == int(golden[f"counts/{label}"])  # spandrel's sum of numel, by the script.
  assert count - _thop_skipped(shapes) == int(golden[f"counts/{label}_thop"])
  assert round((count - _thop_skipped(shapes)) / 1000) == PAPER_COUNTS_K[label]


@pytest.mark.numerics
@pytest.mark.parametrize("name", VARIANTS)
def test_converted_weights_reproduce_spandrel_on_odd_sizes(name, golden):
  model, variables = _converted(golden, name)
  apply = jax.jit(model.apply)
  for i, (x, expected) in enumerate(_inputs(golden, name)):
    y = np.asarray(apply(variables, x))
    assert y.shape == expected.shape and y.dtype == np.float32
    utils.assert_close(y, expected, ops=utils.network_ops(variables), err_msg=f"{name} {i}")


@pytest.mark.parametrize("name", VARIANTS)
def test_detect_reads_every_variant(name, golden):
  assert family.detect(_state_dict(golden, name)) == json.loads(str(golden[f"{name}/hparams"]))


def test_detect_is_none_for_other_families():
  paths = sorted((DATA / "swinir").glob("*.pth")) + sorted((DATA / "basicsr").glob("*.pth"))
  assert paths
  for path in paths:
    state_dict = torch_io.select_params(torch_io.load_state_dict(str(path)))
    assert family.detect(state_dict) is None, path.name
  rng = np.random.default_rng(0)
  assert family.detect({"conv.weight": rng.random((4, 3, 3, 3)), "input.weight": 1.0}) is None
  assert family.detect({}) is None
  # The distinctive keys with shapes that fit no OmniSR: None, not an exception.
  odd = {k: np.zeros((5,)) for k in ("residual_layer.0.residual_layer.0.layer.0.fn.0.weight",
                                     "input.weight", "up.0.weight")}
  assert family.detect(odd) is None


def test_to_jaxsr_drops_thop_junk_and_checks_the_index_buffer(golden):
  state_dict = _state_dict(golden, "x2")
  hparams = family.detect(state_dict)
  buffer = "residual_layer.0.residual_layer.0.layer.2.fn.rel_pos_indices"
  noisy = dict(state_dict, total_ops=np.zeros(1), total_params=np.zeros(1),
               **{"residual_layer.0.esa.total_ops": np.zeros(1),
                  buffer: family.rel_pos_indices(4)})
  assert family.detect(noisy) == hparams
  converted = family.to_jaxsr(noisy, hparams)
  assert converted.keys() == family.to_jaxsr(state_dict, hparams).keys()
  assert "residual_layer.0.residual_layer.0.layer.8.fn.rel_pos_bias.embedding" in converted
  with pytest.raises(ValueError, match="not OmniSR's relative position index"):
    family.to_jaxsr(dict(noisy, **{buffer: family.rel_pos_indices(4)[::-1]}), hparams)


def test_the_index_buffer_is_spandrels_and_jaxsrs():
  # torch: (grid[i] - grid[j] + w - 1) . (2w - 1, 1), grid row-major over the window.
  index = family.rel_pos_indices(3)
  assert index.shape == (9, 9) and index[0, 0] == 2 * 5 + 2 and index[0, 8] == 0
  np.testing.assert_array_equal(index, swinir.relative_position_index(3))


@pytest.mark.numerics
def test_bfloat16_stays_close_to_float32(golden):
  model, variables = _converted(golden, "x2")
  bf16 = model.clone(dtype=jnp.bfloat16)
  x = golden["x2/input_1"]
  y32, y16 = np.asarray(jax.jit(model.apply)(variables, x)), np.asarray(
      jax.jit(bf16.apply)(variables, x))
  assert y16.dtype == np.float32 and np.all(np.isfinite(y16))
  mse = np.mean((np.clip(y16, 0, 1) - np.clip(y32, 0, 1))**2)
  assert 10 * np.log10(1 / mse) > 40  # PSNR of bf16 vs f32 outputs, in dB (63 measured).


def test_signed_range_maps_to_and_from_minus_one_one(golden):
  model, variables = _converted(golden, "x1")
  signed = model.clone(signed_range=True)
  x, _ = next(_inputs(golden, "x1"))
  apply = lambda m, x: np.asarray(jax.jit(m.apply)(variables, x))
  utils.assert_close(apply(signed, x), (apply(model, 2 * x - 1) + 1) / 2,
                     ops=utils.network_ops(variables))


def test_any_size_gives_the_scaled_shape_and_input_multiple_is_the_window():
  model = omnisr.OmniSR(scale=3, num_feat=8, window_size=4, res_num=1)
  assert model.input_multiple == 4 and omnisr.OmniSR().input_multiple == 8
  variables = jax.eval_shape(lambda: model.init(KEY, jnp.zeros((1, 16, 16, 3))))
  for shape in [(2, 3, 5, 3), (1, 17, 30, 3)]:
    y = jax.eval_shape(model.apply, variables, jnp.zeros(shape))
    assert y.shape == (shape[0], 3 * shape[1], 3 * shape[2], 3) and y.dtype == jnp.float32


def test_resize_bilinear_is_torchs_align_corners_false():
  x = np.arange(2 * 3 * 1, dtype=np.float32).reshape(1, 2, 3, 1)
  y = np.asarray(omnisr.resize_bilinear(jnp.asarray(x), 4, 7))[0, :, :, 0]
  # torch: F.interpolate(x, (4, 7), mode='bilinear', align_corners=False).
  rows = np.array([0.0, 0.25, 0.75, 1.0], np.float32)[:, None] * 3
  cols = np.clip((np.arange(7) + 0.5) * 3 / 7 - 0.5, 0, 2)[None, :]
  utils.assert_close(y, rows + cols, ops=4)


@pytest.mark.parametrize("kwargs,message", [
    (dict(num_feat=6), "multiple of 4"),
    (dict(window_size=0), "window_size must be >= 1"),
    (dict(res_num=0), "block_num and res_num"),
    (dict(scale=5), "does not support scale 5"),
])
def test_bad_options_are_clear_errors_at_construction(kwargs, message):
  with pytest.raises(ValueError, match=message):
    omnisr.OmniSR(**kwargs)
