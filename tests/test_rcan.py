"""RCAN: parameter counts of the paper's models, spandrel's outputs reproduced from converted
weights on odd sizes (every scale and layout spandrel detects), detection, bf16, any size.

tests/data/rcan_golden.npz was written by spandrel 0.4.2's own `rcan_arch.py` under CPU torch
(tests/data/make_rcan_golden.py); torch is not needed here.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr.interop import torch_io
from jaxsr.interop import variables as interop_variables
from jaxsr.interop.families import rcan as rcan_family
from jaxsr.models import layers
from jaxsr.models import rcan
from jaxsr.ops import conv as conv_ops

from tests import utils

DATA = pathlib.Path(__file__).parent / "data"
# make_rcan_golden.VARIANTS: name -> (scale, unshuffle_mod, norm).
GOLDEN = {
    "x1": (1, False, True),
    "x1_unshuffle": (1, True, True),
    "x2": (2, False, True),
    "x2_unshuffle": (2, True, True),
    "x2_gelu_range1": (2, False, True),
    "x3": (3, False, True),
    "x3_k5": (3, False, True),
    "x4": (4, False, True),
    "x4_gray_no_norm": (4, False, False),
    "x8": (8, False, True),
}
# The paper's RCAN (10 groups x 20 RCABs, 64 features, reduction 16), mean shifts included:
# the counts of spandrel's module (the paper itself only says "about 16M").
PAPER_COUNTS = {2: 15_444_667, 3: 15_629_307, 4: 15_592_379, 8: 15_740_091}
KEY = jax.random.key(0, impl="rbg")


@pytest.fixture(scope="module")
def golden():
  return dict(np.load(DATA / "rcan_golden.npz"))


def _state_dict(golden, name):
  prefix = f"{name}/sd/"
  return {k[len(prefix):]: v for k, v in golden.items() if k.startswith(prefix)}


def _converted(golden, name, **overrides):
  """(model, variables) of a golden variant, through detect + to_jaxsr + the generic mapper."""
  state_dict = _state_dict(golden, name)
  hparams = rcan_family.detect(state_dict)
  hparams.update(json.loads(str(golden[f"{name}/overrides"])), **overrides)
  model = rcan.RCAN(**hparams)
  like = jax.eval_shape(model.init, KEY, golden[f"{name}/input_0"])
  variables = interop_variables.state_dict_to_variables(
      rcan_family.to_jaxsr(state_dict, hparams), like, source=name)
  return model, variables


@pytest.mark.parametrize("scale", sorted(PAPER_COUNTS))
def test_paper_models_have_spandrels_parameter_counts(scale, golden):
  model = rcan.RCAN(scale=scale)
  with conv_ops.portable():  # Plain XLA convs: the 815 convs trace ~30% faster.
    shapes = jax.eval_shape(lambda k: model.init(k, jnp.zeros((1, 8, 8, 3))), KEY)
  assert layers.count_params(shapes["params"]) == PAPER_COUNTS[scale]
  assert int(golden[f"counts/x{scale}"]) == PAPER_COUNTS[scale]  # spandrel's, by the script.


@pytest.mark.numerics
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_converted_weights_reproduce_spandrel_on_odd_sizes(name, golden):
  model, variables = _converted(golden, name)
  scale, unshuffle, norm = GOLDEN[name]
  assert (model.scale, model.unshuffle_mod, model.norm) == (scale, unshuffle, norm)
  assert model.input_multiple == (4 // scale if unshuffle else 1)
  apply = jax.jit(model.apply)
  for i in range(2):
    x, expected = golden[f"{name}/input_{i}"], golden[f"{name}/output_{i}"]
    y = np.asarray(apply(variables, x))
    assert y.shape == expected.shape and y.dtype == np.float32
    utils.assert_close(y, expected, ops=utils.network_ops(variables), err_msg=f"{name} {i}")


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_detect_reads_every_variant(name, golden):
  assert rcan_family.detect(_state_dict(golden, name)) == json.loads(
      str(golden[f"{name}/hparams"]))


def test_detect_says_none_for_other_families():
  for path in sorted((DATA / "swinir").glob("*.pth")) + sorted((DATA / "basicsr").glob("*.pth")):
    state_dict = torch_io.select_params(torch_io.load_state_dict(str(path)), "")
    assert rcan_family.detect(state_dict) is None, path.name
  for path in sorted(DATA.glob("*_golden.npz")):  # Other families' `<variant>/sd/<key>`.
    if path.name == "rcan_golden.npz":
      continue
    with np.load(path) as data:
      names = {k.split("/sd/")[0] for k in data.files if "/sd/" in k}
      for name in sorted(names):
        prefix = f"{name}/sd/"
        state_dict = {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}
        assert rcan_family.detect(state_dict) is None, f"{path.name} {name}"
  rng = np.random.default_rng(0)
  assert rcan_family.detect({"conv.weight": rng.random((4, 3, 3, 3)), "x": rng.random(3)}) is None
  assert rcan_family.detect({}) is None


def test_to_jaxsr_renames_only_the_upsampler(golden):
  state_dict = _state_dict(golden, "x8")
  renamed = rcan_family.to_jaxsr(state_dict, rcan_family.detect(state_dict))
  assert sorted(k for k in renamed if k not in state_dict) == [
      f"upsample.{k}.{leaf}" for k in (0, 2, 4) for leaf in ("bias", "weight")]
  assert "sub_mean.weight" in renamed and "tail.1.weight" in renamed


def test_inconsistent_rcan_state_dict_is_a_clear_error(golden):
  state_dict = _state_dict(golden, "x2")
  del state_dict["body.2.weight"]
  with pytest.raises(ValueError, match="no 'body.2.weight'"):
    rcan_family.detect(state_dict)


@pytest.mark.numerics
def test_unrolled_blocks_give_the_scanned_output(golden):
  model, variables = _converted(golden, "x4")  # 3 groups x 3 RCABs: both scans run.
  unrolled = rcan.RCAN(**{**_hparams(model), "scan_blocks": False})
  x = golden["x4/input_1"]
  utils.assert_close(jax.jit(unrolled.apply)(variables, x), jax.jit(model.apply)(variables, x),
                     ops=utils.network_ops(variables))


def _hparams(model):
  return {f: getattr(model, f) for f in ("scale", "n_resgroups", "n_resblocks", "n_feats",
                                         "n_colors", "rgb_range", "norm", "kernel_size",
                                         "reduction", "act_mode", "unshuffle_mod")}


def test_mean_shift_gets_no_gradient(golden):
  model, variables = _converted(golden, "x1")
  x = golden["x1/input_0"]
  grads = jax.jit(jax.grad(lambda p: jnp.sum(model.apply({"params": p}, x))))(
      variables["params"])
  for name in ("sub_mean", "add_mean"):
    assert all(not np.any(g) for g in jax.tree.leaves(grads[name]))
  assert np.any(grads["head_0"]["kernel"])


def test_fresh_mean_shift_is_the_official_init():
  model = rcan.RCAN(scale=2, n_resgroups=1, n_resblocks=1, n_feats=4, reduction=2)
  params = jax.jit(model.init)(KEY, jnp.zeros((1, 4, 4, 3)))["params"]
  mean = np.asarray(layers.DIV2K_RGB_MEAN, np.float32) * np.float32(255)
  utils.assert_close(params["sub_mean"]["bias"], -mean, ops=1)
  utils.assert_close(params["add_mean"]["bias"], mean, ops=1)
  utils.assert_close(params["sub_mean"]["kernel"][0, 0], np.eye(3), ops=1)


@pytest.mark.numerics
def test_bfloat16_stays_close_to_float32(golden):
  model, variables = _converted(golden, "x4")
  bf16 = rcan.RCAN(**_hparams(model), dtype=jnp.bfloat16)
  x = golden["x4/input_0"]
  y32 = np.asarray(jax.jit(model.apply)(variables, x))
  y16 = np.asarray(jax.jit(bf16.apply)(variables, x))
  assert y16.dtype == np.float32 and np.all(np.isfinite(y16))
  mse = np.mean((np.clip(y16, 0, 1) - np.clip(y32, 0, 1))**2)
  assert 10 * np.log10(1 / mse) > 35  # PSNR of bf16 vs f32 outputs, in dB.


@pytest.mark.numerics
@pytest.mark.parametrize("scale", [1, 2])
def test_any_size_with_the_unshuffle_front_end(scale, golden):
  name = f"x{scale}_unshuffle"
  model, variables = _converted(golden, name)
  down = 4 // scale
  assert model.input_multiple == down
  apply = jax.jit(model.apply)
  assert apply(variables, jnp.ones((1, 1, 3, 3))).shape == (1, scale, 3 * scale, 3)
  # The reflect padding at the bottom / right: padding by hand to the size the model pads to
  # gives the same program input, so the top-left of its output is the image's output.
  x = golden[f"{name}/input_0"]  # 7 x 9.
  h, w = x.shape[1:3]
  padded = np.pad(x, ((0, 0), (0, -h % down), (0, -w % down), (0, 0)), mode="reflect")
  utils.assert_close(apply(variables, x), apply(variables, padded)[:, :h * scale, :w * scale],
                     ops=utils.network_ops(variables))


@pytest.mark.parametrize("kwargs,message", [
    (dict(scale=5), "does not support scale 5"),
    (dict(scale=4, act_mode="prelu"), "act_mode must be one of"),
    (dict(scale=4, n_colors=1), "needs n_colors=3"),
    (dict(scale=4, kernel_size=4), "kernel_size must be odd"),
])
def test_bad_options_are_clear_errors_at_construction(kwargs, message):
  with pytest.raises(ValueError, match=message):
    rcan.RCAN(**kwargs)


def test_unshuffle_is_ignored_above_x2():
  assert rcan.RCAN(scale=4, unshuffle_mod=True).input_multiple == 1
  assert rcan.RCAN(scale=1, unshuffle_mod=True).downscale_factor == 4
