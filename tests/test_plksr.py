"""PLKSR / RealPLKSR: parameter counts of the released models, spandrel's outputs reproduced from
imported weights on odd sizes (every scale, channel mixer, large-kernel layout, norm and
upsampler), detection, bf16, any input size, dropout.

The fixture tests/data/plksr_golden.npz was written by spandrel 0.4.2's own PLKSR / RealPLKSR
under CPU torch (tests/data/make_plksr_golden.py); torch is not needed here.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr.interop import torch_io
from jaxsr.interop import variables as interop_variables
from jaxsr.interop.families import plksr as family
from jaxsr.models import layers
from jaxsr.models import plksr

from tests import utils

DATA = pathlib.Path(__file__).parent / "data"
CLASSES = {"plksr": plksr.PLKSR, "realplksr": plksr.RealPLKSR}
KEY = jax.random.key(0, impl="rbg")
# The released x4 models: (class, kwargs, parameter count).
RELEASED = {
    "plksr_x4": (plksr.PLKSR, {}, 7_386_096),
    "plksr_tiny_x4": (plksr.PLKSR, dict(n_blocks=12, kernel_size=13, use_ea=False), 2_370_544),
    "realplksr_x4": (plksr.RealPLKSR, {}, 7_389_680),
    "realplksr_ln_x4": (plksr.RealPLKSR, dict(layer_norm=True), 7_389_680),
    "realplksr_dysample_x4": (plksr.RealPLKSR, dict(dysample=True), 7_402_243),
}


@pytest.fixture(scope="module")
def golden():
  return dict(np.load(DATA / "plksr_golden.npz"))


def _variants() -> list[str]:
  with np.load(DATA / "plksr_golden.npz") as arrays:
    return sorted({k.split("/")[0] for k in arrays.files if not k.startswith("counts/")})


VARIANTS = _variants()


def _state_dict(golden, name) -> dict[str, np.ndarray]:
  prefix = f"{name}/sd/"
  return {k[len(prefix):]: v for k, v in golden.items() if k.startswith(prefix)}


def _tuples(hparams: dict) -> dict:
  """JSON lists as the tuples `detect` returns."""
  return {k: tuple(v) if isinstance(v, list) else v for k, v in hparams.items()}


def _golden_model(golden, name, **overrides):
  """(model, variables) of a golden variant, imported as `--arch=auto` would."""
  state_dict = _state_dict(golden, name)
  hparams = family.detect(state_dict)
  kwargs = {k: v for k, v in hparams.items() if k != "arch"}
  kwargs.update(json.loads(str(golden[f"{name}/undetectable"])), **overrides)
  model = CLASSES[hparams["arch"]](**kwargs)
  x = golden[f"{name}/input_0"]
  like = jax.eval_shape(lambda k: model.init(k, x), KEY)
  variables = interop_variables.state_dict_to_variables(
      family.to_jaxsr(state_dict, hparams), like, source=name)
  return model, variables


@pytest.mark.parametrize("label", sorted(RELEASED))
def test_released_models_have_spandrels_parameter_counts(label, golden):
  cls, kwargs, expected = RELEASED[label]
  model = cls(scale=4, **kwargs)
  shapes = jax.eval_shape(lambda k: model.init(k, jnp.zeros((1, 8, 8, 3))), KEY)
  assert layers.count_params(shapes["params"]) == expected
  assert int(golden[f"counts/{label}"]) == expected  # spandrel's own count, by the script.


@pytest.mark.parametrize("name", VARIANTS)
def test_detect_reads_every_hparam_off_the_shapes(name, golden):
  expected = _tuples(json.loads(str(golden[f"{name}/hparams"])))
  assert family.detect(_state_dict(golden, name)) == expected
  assert expected["arch"] in family.ARCHS


@pytest.mark.numerics
@pytest.mark.parametrize("name", VARIANTS)
def test_imported_weights_reproduce_spandrel_on_odd_sizes(name, golden):
  model, variables = _golden_model(golden, name)
  assert model.input_multiple == 1
  apply = jax.jit(model.apply)
  for i in range(2):
    x, expected = golden[f"{name}/input_{i}"], golden[f"{name}/output_{i}"]
    y = np.asarray(apply(variables, x))
    assert y.shape == expected.shape and y.dtype == np.float32
    utils.assert_close(y, expected, ops=utils.network_ops(variables), err_msg=f"{name} {i}")


def test_dysample_init_pos_is_spandrels_buffer(golden):
  for name in VARIANTS:
    state_dict = _state_dict(golden, name)
    if "to_img.init_pos" in state_dict:
      scale = family.detect(state_dict)["scale"]
      groups = plksr.dysample_groups(scale)
      expected = plksr.dysample_init_pos(scale, groups)  # (k - (s - 1) / 2) / s: one rounding.
      utils.assert_close(state_dict["to_img.init_pos"].reshape(-1), expected, magnitude=1)
      utils.assert_close(family.dysample_init_pos(scale, groups), expected, magnitude=1)
  state_dict = _state_dict(golden, "realplksr_x2_dysample")
  bad = dict(state_dict, **{"to_img.init_pos": state_dict["to_img.init_pos"][:, ::-1].copy()})
  with pytest.raises(ValueError, match="not DySample's for scale 2"):
    family.to_jaxsr(bad, family.detect(bad))


def test_detect_returns_none_for_other_families():
  paths = sorted((DATA / "swinir").glob("*.pth")) + sorted((DATA / "basicsr").glob("*.pth"))
  assert paths
  for path in paths:
    obj = torch_io.load_state_dict(str(path))
    state_dict = torch_io.select_params(obj) if isinstance(obj, dict) else obj
    assert family.detect(state_dict) is None, path
  for path in sorted(DATA.glob("*_golden.npz")):  # The other families' golden state dicts.
    if path.name == "plksr_golden.npz":
      continue
    with np.load(path) as arrays:
      keys = [k for k in arrays.files if "/sd/" in k]
      for variant in sorted({k.split("/sd/")[0] for k in keys}):
        state_dict = {k.split("/sd/", 1)[1]: arrays[k] for k in keys
                      if k.startswith(f"{variant}/sd/")}
        assert family.detect(state_dict) is None, (path.name, variant)
  rng = np.random.default_rng(0)
  assert family.detect({"feats.0.weight": rng.random((8, 3, 3, 3)),
                        "conv.weight": rng.random((4, 4, 3, 3))}) is None
  assert family.detect({}) is None


def test_sparse_plk_with_unreadable_dilations_is_a_clear_error(golden):
  state_dict = dict(_state_dict(golden, "plksr_x2_sparse_max"))
  state_dict["feats.1.lk.convs.5.weight"] = state_dict["feats.1.lk.convs.0.weight"]
  with pytest.raises(ValueError, match="dilations cannot be read"):
    family.detect(state_dict)


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["plksr_x2", "realplksr_x2_dysample"])
def test_bfloat16_stays_close_to_float32(name, golden):
  model, variables = _golden_model(golden, name)
  bf16, _ = _golden_model(golden, name, dtype=jnp.bfloat16)
  x = golden[f"{name}/input_1"]
  y32 = np.asarray(jax.jit(model.apply)(variables, x))
  y16 = np.asarray(jax.jit(bf16.apply)(variables, x))
  assert y16.dtype == np.float32 and np.all(np.isfinite(y16))
  peak = np.ptp(y32)  # Outputs of random weights span a few units, not [0, 1].
  mse = np.mean((y16 - y32)**2)
  assert 10 * np.log10(peak**2 / mse) > 30  # PSNR of bf16 vs f32 outputs, in dB.


@pytest.mark.numerics
def test_any_size_and_scan_equal_unrolled(golden):
  model, variables = _golden_model(golden, "realplksr_x2_dysample")
  apply = jax.jit(model.apply)
  for shape in [(1, 1, 1, 3), (1, 3, 17, 3)]:
    y = apply(variables, jnp.full(shape, 0.5))
    assert y.shape == (1, 2 * shape[1], 2 * shape[2], 3) and bool(jnp.all(jnp.isfinite(y)))
  unrolled, _ = _golden_model(golden, "realplksr_x2_dysample", scan_blocks=False)
  x = golden["realplksr_x2_dysample/input_1"]
  utils.assert_close(jax.jit(unrolled.apply)(variables, x), apply(variables, x),
                     ops=utils.network_ops(variables))


@pytest.mark.parametrize("cls,kwargs,message", [
    (plksr.PLKSR, dict(scale=5), "does not support scale 5"),
    (plksr.PLKSR, dict(ccm_type="XCM"), "ccm_type='XCM'"),
    (plksr.PLKSR, dict(lk_type="Big"), "lk_type='Big'"),
    (plksr.PLKSR, dict(dim=4, split_ratio=0.1), r"int\(dim \* split_ratio\)"),
    (plksr.RealPLKSR, dict(dim=6), "not divisible by norm_groups 4"),
    (plksr.RealPLKSR, dict(dropout=1.0), "dropout must be in"),
])
def test_bad_options_are_clear_errors_at_construction(cls, kwargs, message):
  with pytest.raises(ValueError, match=message):
    cls(**kwargs)


def test_dropout_drops_channels_in_training_only():
  model = plksr.RealPLKSR(scale=2, dim=4, n_blocks=1, kernel_size=3, dropout=0.5)
  x = jnp.asarray(np.random.default_rng(0).random((2, 6, 5, 3), np.float32))
  variables = jax.jit(model.init)(KEY, x)
  assert set(variables["params"]) == {"feats_0", "feats_1", "feats_3"}  # feats_2: Dropout2d.
  evaluated = jax.jit(model.apply)(variables, x)
  no_dropout = plksr.RealPLKSR(scale=2, dim=4, n_blocks=1, kernel_size=3)
  utils.assert_close(jax.jit(no_dropout.apply)(variables, x), evaluated, ops=1)
  with pytest.raises(Exception, match="dropout"):
    jax.jit(lambda v, x: model.apply(v, x, train=True))(variables, x)

  def loss(params):
    y = model.apply({"params": params}, x, train=True, rngs={"dropout": jax.random.key(1)})
    return jnp.mean(y**2)

  value, grads = jax.jit(jax.value_and_grad(loss))(variables["params"])
  assert float(value) != pytest.approx(float(jnp.mean(evaluated**2)))
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
