"""HAT: parameter counts of the released models, spandrel's outputs reproduced from imported
weights on odd sizes, detection of every variant, buffers, bf16, any size, scanned blocks.

tests/data/hat_golden.npz was written by spandrel 0.4.2's copy of the official `hat_arch.py`
under CPU torch (tests/data/make_hat_golden.py); torch is not needed here.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr.interop import torch_io
from jaxsr.interop import variables as interop_variables
from jaxsr.interop.families import hat as hat_family
from jaxsr.models import hat
from jaxsr.models import layers

from tests import utils

DATA = pathlib.Path(__file__).parent / "data"
GOLDEN = ("s_x2", "m_x3", "m_x4", "x1_gray", "x8")  # make_hat_golden.VARIANTS
# The released x4 models (official options/test/*.yml; 'hat_x4' is HAT's defaults): kwargs ->
# (count, the paper's millions).
RELEASED = {
    "hat_s_x4": (dict(embed_dim=144, compress_ratio=24, squeeze_factor=24), 9_621_183, 9.6),
    "hat_x4": (dict(), 20_772_507, 20.8),
    "hat_l_x4": (dict(depths=(6,) * 12, num_heads=(6,) * 12), 40_846_575, 40.8),
}
TINY = dict(embed_dim=24, depths=(4,), num_heads=(2,), window_size=4, compress_ratio=6,
            squeeze_factor=12, num_feat=8)


@pytest.fixture(scope="module")
def golden():
  return dict(np.load(DATA / "hat_golden.npz"))


def _state_dict(golden, name):
  prefix = f"{name}/sd/"
  return {k[len(prefix):]: v for k, v in golden.items() if k.startswith(prefix)}


def _abstract(model, channels=3):
  return jax.eval_shape(lambda key: model.init(key, jnp.zeros((1, 8, 8, channels))),
                        jax.random.key(0, impl="rbg"))


def _golden_model(golden, name, **overrides):
  """(hparams detected, model, variables converted) of golden model `name`."""
  state_dict = _state_dict(golden, name)
  hparams = hat_family.detect(state_dict)
  model = hat.HAT(**hparams, **overrides)
  variables = interop_variables.state_dict_to_variables(
      hat_family.to_jaxsr(state_dict, hparams), _abstract(model, hparams["in_chans"]))
  return hparams, model, variables


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_models_have_the_official_parameter_counts(name, golden):
  kwargs, expected, paper_millions = RELEASED[name]
  model = hat.HAT(scale=4, **kwargs)
  assert layers.count_params(_abstract(model)["params"]) == expected
  assert int(golden[f"counts/{name}"]) == expected  # spandrel's own count, stored by the script.
  assert round(expected / 1e6, 1) == paper_millions


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_detect_reads_every_variant(name, golden):
  detected = hat_family.detect(_state_dict(golden, name))
  as_json = {k: list(v) if isinstance(v, tuple) else v for k, v in detected.items()}
  assert as_json == json.loads(str(golden[f"{name}/hparams"]))
  hat.HAT(**detected)  # Valid kwargs.


def test_detect_ignores_other_families(golden):
  others = sorted((DATA / "swinir").glob("*.pth")) + sorted((DATA / "basicsr").glob("*.pth"))
  assert others
  for path in others:
    state_dict = torch_io.select_params(torch_io.load_state_dict(str(path)), "")
    assert hat_family.detect(state_dict) is None, path.name
  rng = np.random.default_rng(0)
  assert hat_family.detect({f"a.{i}.weight": rng.random((2, 3)) for i in range(4)}) is None
  assert hat_family.detect({}) is None
  # A HAT state dict without its distinctive OCAB is not claimed either.
  partial = {k: v for k, v in _state_dict(golden, "m_x3").items() if "overlap_attn" not in k}
  assert hat_family.detect(partial) is None


@pytest.mark.numerics
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_imported_weights_reproduce_spandrel_on_odd_sizes(name, golden):
  _, model, variables = _golden_model(golden, name)
  x, expected = golden[f"{name}/input"], golden[f"{name}/output"]
  y = np.asarray(jax.jit(model.apply)(variables, x))
  assert y.shape == expected.shape and y.dtype == np.float32
  utils.assert_close(y, expected, ops=utils.network_ops(variables), err_msg=name)


def test_buffers_are_checked_then_dropped(golden):
  state_dict = _state_dict(golden, "m_x4")
  hparams = hat_family.detect(state_dict)
  np.testing.assert_array_equal(state_dict["relative_position_index_SA"],
                                hat.relative_position_index(4))
  np.testing.assert_array_equal(state_dict["relative_position_index_OCA"],
                                hat.oca_relative_position_index(4, 8))
  converted = hat_family.to_jaxsr(state_dict, hparams)
  assert not any("relative_position_index" in k for k in converted)
  assert len(converted) == len(state_dict) - 2
  for key in ("relative_position_index_SA", "relative_position_index_OCA"):
    bad = dict(state_dict, **{key: state_dict[key][::-1].copy()})
    with pytest.raises(ValueError, match=f"{key} .* is not HAT's relative position index"):
      hat_family.to_jaxsr(bad, hparams)
  # Files saved without the buffers read the same.
  assert hat_family.detect(converted) == hparams
  with pytest.raises(ValueError, match="ape=True"):
    hat_family.detect(dict(state_dict, absolute_pos_embed=np.zeros((1, 4096, 30))))


@pytest.mark.numerics
def test_bfloat16_stays_close_to_float32(golden):
  _, model, variables = _golden_model(golden, "m_x3", dtype=jnp.bfloat16)
  y16 = np.asarray(jax.jit(model.apply)(variables, golden["m_x3/input"]))
  y32 = golden["m_x3/output"]
  assert y16.dtype == np.float32 and np.isfinite(y16).all()
  mse = np.mean((np.clip(y16, 0, 1) - np.clip(y32, 0, 1))**2)
  assert 10 * np.log10(1 / mse) > 50  # PSNR of bf16 vs float32 outputs, in dB (66 here).


def test_any_size_and_input_multiple(golden):
  _, model, variables = _golden_model(golden, "x1_gray")  # Window 8, x1, 1 channel.
  assert model.input_multiple == 8 and hat.HAT().input_multiple == 16
  for shape in [(1, 3, 5, 1), (2, 8, 16, 1), (1, 17, 9, 1)]:
    out = jax.eval_shape(model.apply, variables, jax.ShapeDtypeStruct(shape, jnp.float32))
    assert out.shape == shape and out.dtype == jnp.float32
  big = hat.HAT(scale=3, **TINY)
  out = jax.eval_shape(lambda x: big.init_with_output(jax.random.key(0, impl="rbg"), x)[0],
                       jax.ShapeDtypeStruct((2, 6, 7, 3), jnp.float32))
  assert out.shape == (2, 18, 21, 3)
  # Smaller than the window: reflected more than once, still finite.
  y = jax.jit(model.apply)(variables, golden["x8/input"][..., :1])  # 3 x 5.
  assert y.shape == (1, 3, 5, 1) and np.isfinite(y).all()


def test_overlapping_windows_are_torch_unfold():
  x = jnp.arange(2 * 8 * 12 * 3, dtype=jnp.float32).reshape(2, 8, 12, 3)
  for window, overlap in [(4, 6), (4, 8), (4, 4), (2, 6)]:
    got = np.asarray(hat.overlapping_windows(x, window, overlap))
    pad = (overlap - window) // 2
    padded = np.pad(np.asarray(x), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    expected = np.stack([padded[:, i:i + overlap, j:j + overlap].reshape(2, -1, 3)
                         for i in range(0, 8, window) for j in range(0, 12, window)], axis=1)
    np.testing.assert_array_equal(got, expected)  # Integers: data movement only.


@pytest.mark.numerics
def test_scanned_blocks_give_the_unrolled_output_and_drops():
  x = jnp.asarray(np.random.default_rng(0).random((1, 8, 8, 3), np.float32))
  scanned = hat.HAT(scale=2, drop_path_rate=0.5, **TINY)
  unrolled = hat.HAT(scale=2, drop_path_rate=0.5, scan_blocks=False, **TINY)
  rng = np.random.default_rng(1)  # Any values: cheaper than compiling init.
  variables = jax.tree.map(lambda s: rng.normal(0.0, 0.3, s.shape).astype(np.float32),
                           _abstract(scanned))
  run = lambda model: jax.jit(lambda v, x: model.apply(
      v, x, train=True, rngs={"dropout": jax.random.key(1, impl="rbg")}))(variables, x)
  utils.assert_close(run(scanned), run(unrolled), ops=utils.network_ops(variables))
  with pytest.raises(Exception, match="dropout"):
    scanned.apply(variables, x, train=True)


@pytest.mark.parametrize("kwargs,message", [
    (dict(scale=16), "does not support scale 16"),
    (dict(resi_connection="3conv"), "resi_connection='3conv' is not one of"),
    (dict(num_heads=(7,) * 6), "embed_dim 180 is not divisible"),
    (dict(depths=(6, 6)), "one entry per RHAG"),
    (dict(overlap_ratio=0.25, window_size=12), "adds 3 to the window 12"),
    (dict(squeeze_factor=200), "squeeze_factor 200 leaves no channel"),
    (dict(attention="flash"), "attention='flash'"),
])
def test_bad_options_are_clear_errors_at_construction(kwargs, message):
  with pytest.raises(ValueError, match=message):
    hat.HAT(**kwargs)
