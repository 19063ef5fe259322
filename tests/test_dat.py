"""DAT: parameter counts of the released models, spandrel's outputs reproduced from imported
weights on odd sizes, state-dict detection and buffer checks, bf16, training mode, any size.

tests/data/dat_golden.npz was written by spandrel 0.4.2's own DAT code under CPU torch
(tests/data/make_dat_golden.py); torch is not needed here.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr.interop import torch_io
from jaxsr.interop import variables as variables_lib
from jaxsr.interop.families import dat as dat_family
from jaxsr.models import dat
from jaxsr.models import layers

from tests import utils

DATA = pathlib.Path(__file__).parent / "data"
GOLDEN = ("x4", "x3", "x2", "light_x2")  # make_dat_golden.VARIANTS
KEY = jax.random.key(0, impl="rbg")
_LIGHT = dict(embed_dim=60, depth=(18,), num_heads=(6,), expansion_factor=2.0,
              resi_connection="3conv", upsampler="pixelshuffledirect")
# Released configurations (make_dat_golden.FULL_SIZE): jaxsr kwargs, paper / README count.
RELEASED = {
    "dat_x4": (dict(scale=4), "14.80M"),
    "dat_s_x4": (dict(scale=4, split_size=(8, 16), expansion_factor=2.0), "11.21M"),
    "dat_light_x4": (dict(_LIGHT, scale=4), "573K"),
}
# The others, as (traced configuration, change): the body's parameters do not depend on the
# scale, and split_size has none (the position bias is an MLP of the offsets).
DERIVED = {
    "dat_x2": ("dat_x4", dict(scale=2)),
    "dat_x3": ("dat_x4", dict(scale=3)),
    "dat_2_x4": ("dat_s_x4", dict(split_size=(8, 32))),  # README: 11.21M.
    "dat_light_x2": ("dat_light_x4", dict(scale=2)),
}


def _count(model):
  shapes = jax.eval_shape(lambda k: model.init(k, jnp.zeros((1, 16, 16, 3))), KEY)
  return layers.count_params(shapes["params"])


@pytest.fixture(scope="module")
def golden():
  return dict(np.load(DATA / "dat_golden.npz"))


def _state_dict(golden, prefix):
  """The float32 state dict stored under `prefix/` (floats are stored as float16)."""
  return {k[len(prefix) + 1:]: v.astype(np.float32) if v.dtype == np.float16 else v
          for k, v in golden.items() if k.startswith(prefix + "/")}


def _hparams(golden, name):
  return {k: tuple(v) if isinstance(v, list) else v
          for k, v in json.loads(str(golden[f"{name}/hparams"])).items()}


def _convert(golden, name, **overrides):
  """(model, variables) from the golden state dict: detect, to_jaxsr, state_dict_to_variables
  (the path `jaxsr.convert` takes)."""
  state_dict = _state_dict(golden, f"{name}/sd")
  hparams = dat_family.detect(state_dict)
  model = dat.DAT(**hparams, **overrides)
  x = jnp.zeros((1, 16, 16, hparams["in_chans"]))
  like = jax.eval_shape(lambda k: model.init(k, x), KEY)
  return model, variables_lib.state_dict_to_variables(
      dat_family.to_jaxsr(state_dict, hparams), like)


@pytest.mark.parametrize("label", sorted(RELEASED))
def test_released_models_have_spandrels_parameter_counts(label, golden):
  kwargs, paper = RELEASED[label]
  count = _count(dat.DAT(**kwargs))
  assert count == int(golden[f"counts/{label}"])  # spandrel's count, stored by the script.
  assert (f"{count / 1e6:.2f}M" if paper.endswith("M") else f"{count / 1e3:.0f}K") == paper


@pytest.mark.parametrize("label", sorted(DERIVED))
def test_other_released_models_differ_by_what_their_changes_add(label, golden):
  """Golden count = the traced model's + the change's effect on a one-block model of the same
  width (cheap to trace)."""
  base, change = DERIVED[label]
  kwargs = dict(RELEASED[base][0], depth=(1,), num_heads=(6,))
  added = _count(dat.DAT(**dict(kwargs, **change))) - _count(dat.DAT(**kwargs))
  assert int(golden[f"counts/{label}"]) == int(golden[f"counts/{base}"]) + added


@pytest.mark.numerics
@pytest.mark.parametrize("name", GOLDEN)
def test_imported_weights_reproduce_spandrel_on_odd_sizes(name, golden):
  model, variables = _convert(golden, name)
  x, expected = golden[f"{name}/input_0"], golden[f"{name}/output_0"]
  y = np.asarray(jax.jit(model.apply)(variables, x))
  assert y.shape == expected.shape and y.dtype == np.float32
  # float32 against PyTorch's float32: within the rounding of every layer's sums, and (outputs
  # below 1) within 1e-5 (2e-7 measured).
  utils.assert_close(y, expected, ops=utils.network_ops(variables), err_msg=name)
  assert np.max(np.abs(y - expected)) <= 1e-5, name


@pytest.mark.numerics
@pytest.mark.parametrize("branch", [0, 1])
def test_spatial_attention_branch_with_a_wide_position_bias(branch, golden):
  """One branch at 64 channels (position-bias MLP 4 wide; 1 in the golden models), on (2, 4)
  and (4, 2) windows of a shifted 4 x 4 image."""
  window = ((2, 4), (4, 2))[branch]
  state_dict = _state_dict(golden, f"spatial_attention/sd_{branch}")
  offsets, index = state_dict.pop("rpe_biases"), state_dict.pop("relative_position_index")
  for module in (dat, dat_family):  # The model's buffers, and those to_jaxsr checks.
    np.testing.assert_array_equal(module.position_offsets(window), offsets)
    np.testing.assert_array_equal(module.relative_position_index(window), index)
  mask = golden[f"spatial_attention/mask_{branch}"]
  shift = (window[0] // 2, window[1] // 2)
  np.testing.assert_array_equal(dat.shifted_window_mask(4, 4, window, shift), mask)
  np.testing.assert_array_equal(dat_family.window_mask(4, window), mask)

  module = dat.WindowAttention(2, window)
  q, k, v = (a.astype(np.float32).reshape(1, 4, 4, 64) for a in golden["spatial_attention/qkv"])
  like = jax.eval_shape(lambda key: module.init(key, q, k, v, mask), KEY)
  variables = variables_lib.state_dict_to_variables(state_dict, like)
  y = jax.jit(module.apply)(variables, q, k, v, mask)
  utils.assert_close(y, golden[f"spatial_attention/output_{branch}"],
                     ops=utils.network_ops(variables) + 64)


@pytest.mark.parametrize("name", GOLDEN)
def test_detect_reads_every_hparam(name, golden):
  state_dict = _state_dict(golden, f"{name}/sd")
  assert dat_family.detect(state_dict) == _hparams(golden, name)
  # Which blocks torch gave shift masks: the spatial blocks `is_shifted` names.
  masked = {tuple(map(int, k.split(".")[1:4:2])) for k in state_dict if k.endswith("mask_0")}
  depth = _hparams(golden, name)["depth"]
  assert masked == {(i, j) for i, d in enumerate(depth) for j in range(0, d, 2)
                    if dat.is_shifted(i, j)}


def test_shift_schedule_is_the_papers():
  """Shifted spatial blocks: 2, 6, 10 in even groups, 0, 4, 8 in odd ones (dat_arch.py)."""
  assert [j for j in range(0, 12, 2) if dat.is_shifted(0, j)] == [2, 6, 10]
  assert [j for j in range(0, 12, 2) if dat.is_shifted(1, j)] == [0, 4, 8]


def test_detect_reads_every_scale(golden):
  x4 = _state_dict(golden, "x4/sd")
  up = x4["upsample.0.weight"]
  without = lambda d, *keys: {k: v for k, v in d.items() if k not in keys}
  assert dat_family.detect(without(x4, "upsample.2.weight", "upsample.2.bias"))["scale"] == 2
  x1 = without(x4, *[k for k in x4 if k.startswith("upsample.")])
  assert dat_family.detect(x1)["scale"] == 1
  x8 = dict(x4, **{"upsample.4.weight": up, "upsample.4.bias": x4["upsample.0.bias"]})
  assert dat_family.detect(x8)["scale"] == 8
  light = _state_dict(golden, "light_x2/sd")
  for scale in (1, 3, 4, 8):
    sd = dict(light, **{"upsample.0.weight": np.zeros((3 * scale**2, 32, 3, 3), np.float32)})
    assert dat_family.detect(sd)["scale"] == scale


@pytest.mark.parametrize("path", sorted((DATA / "swinir").glob("*.pth"))
                         + sorted((DATA / "basicsr").glob("*.pth")), ids=lambda p: p.stem)
def test_detect_rejects_other_families(path):
  state_dict = torch_io.select_params(torch_io.load_state_dict(str(path)))
  assert dat_family.detect(state_dict) is None


def test_detect_rejects_random_and_broken_dicts(golden):
  rng = np.random.default_rng(0)
  assert dat_family.detect({}) is None
  assert dat_family.detect({f"w{i}": rng.random((3, 3)) for i in range(5)}) is None
  state_dict = _state_dict(golden, "x3/sd")
  assert dat_family.detect({k: v for k, v in state_dict.items() if "conv_after" not in k}) is None
  broken = dict(state_dict, **{"layers.0.blocks.0.attn.attns.0.rpe_biases": np.zeros(2)})
  assert dat_family.detect(broken) is None


@pytest.mark.parametrize("key,message", [
    ("layers.0.blocks.0.attn.attns.1.relative_position_index", "not DAT's buffer"),
    ("layers.1.blocks.0.attn.attn_mask_1", "img_size 8"),
])
def test_to_jaxsr_checks_the_buffers(key, message, golden):
  state_dict = _state_dict(golden, "x4/sd")
  hparams = dat_family.detect(state_dict)
  assert key in state_dict and key not in dat_family.to_jaxsr(state_dict, hparams)
  bad = dict(state_dict, **{key: state_dict[key][::-1].copy()})
  with pytest.raises(ValueError, match=message):
    dat_family.to_jaxsr(bad, hparams)


@pytest.mark.numerics
def test_bfloat16_stays_close_to_float32(golden):
  model, variables = _convert(golden, "light_x2", dtype=jnp.bfloat16)
  x, y32 = golden["light_x2/input_0"], golden["light_x2/output_0"]
  y16 = np.asarray(jax.jit(model.apply)(variables, x))
  assert y16.dtype == np.float32 and np.all(np.isfinite(y16))
  mse = np.mean((np.clip(y16, 0, 1) - np.clip(y32, 0, 1))**2)
  assert 10 * np.log10(1 / mse) > 50  # PSNR of bf16 vs f32 outputs, in dB (65 measured).


def test_training_mode_updates_batch_norms_and_drops_paths(golden):
  model, variables = _convert(golden, "x4", drop_path_rate=0.5)  # Blocks' rates 0, 0.25, 0.5.
  x = golden["x4/input_0"]
  train = jax.jit(lambda v, key: model.apply(v, x, train=True, rngs={"dropout": key},
                                             mutable=["batch_stats"]))
  (y1, updates), (y2, _) = train(variables, jax.random.key(1)), train(variables, jax.random.key(2))
  assert y1.shape == golden["x4/output_0"].shape and np.all(np.isfinite(y1))
  assert not np.allclose(y1, y2)  # Other drops.
  moved = jax.tree.map(lambda a, b: bool(np.any(a != b)), updates["batch_stats"],
                       variables["batch_stats"])
  assert all(jax.tree.leaves(moved))
  with pytest.raises(Exception, match="dropout"):
    jax.eval_shape(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]), variables)


@pytest.mark.parametrize("scale,upsampler", [(1, "pixelshuffle"), (8, "pixelshuffle"),
                                             (3, "pixelshuffledirect")])
def test_any_size_gives_the_scaled_shape(scale, upsampler):
  model = dat.DAT(scale=scale, embed_dim=32, depth=(2,), num_heads=(2,), split_size=(2, 8),
                  upsampler=upsampler, num_feat=8)
  assert model.input_multiple == 1
  like = jax.eval_shape(lambda k: model.init(k, jnp.zeros((1, 16, 16, 3))), KEY)
  for shape in [(1, 1, 1, 3), (2, 5, 33, 3), (1, 17, 9, 3)]:
    y = jax.eval_shape(model.apply, like, jax.ShapeDtypeStruct(shape, jnp.float32))
    assert y.shape == (shape[0], shape[1] * scale, shape[2] * scale, 3)
    assert y.dtype == jnp.float32


@pytest.mark.parametrize("kwargs,message", [
    (dict(upsampler="nearest+conv"), "upsampler='nearest\\+conv' is not one of"),
    (dict(resi_connection="2conv"), "resi_connection='2conv'"),
    (dict(depth=(6, 6)), "one entry per residual group"),
    (dict(embed_dim=8, num_heads=(2,) * 6), "embed_dim must be even and >= 16"),
    (dict(num_heads=(7,) * 6), "num_heads"),
    (dict(split_size=(3, 4)), "split_size"),
    (dict(embed_dim=36, num_heads=(2,) * 6, expansion_factor=1.25), "must be even"),
    (dict(scale=5), "does not support scale 5"),
])
def test_bad_options_are_clear_errors_at_construction(kwargs, message):
  with pytest.raises(ValueError, match=message):
    dat.DAT(**kwargs)
