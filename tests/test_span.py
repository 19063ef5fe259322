"""SPAN: parameter counts of the released models, spandrel's outputs reproduced from converted
weights (training and re-parameterised layouts) on odd sizes, detection, bf16, any size.

tests/data/span_golden.npz was written by spandrel 0.4.2's own SPAN under CPU torch
(tests/data/make_span_golden.py); torch is not needed here.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr.interop import torch_io
from jaxsr.interop import variables as interop_variables
from jaxsr.interop.families import span as span_family
from jaxsr.models import layers
from jaxsr.models import span

from tests import utils

DATA = pathlib.Path(__file__).parent / "data"
VARIANTS = ("x4", "x2_no_norm", "x3", "x1_gray")  # make_span_golden.VARIANTS
NUM_INPUTS = 3
# make_span_golden.RELEASED: label -> (scale, feature_channels).
RELEASED = {"x4_ch48": (4, 48), "x4_ch52": (4, 52), "x2_ch48": (2, 48), "x2_ch52": (2, 52),
            "ntire2024_x4_ch28": (4, 28)}
# Published re-parameterised sizes, in thousands: NTIRE 2024 ESR report (arXiv 2404.10343),
# Table 1, team XiaomiMM: 0.151 M.
PUBLISHED_K = {"ntire2024_x4_ch28": 151}
_KEY = jax.random.key(0, impl="rbg")


@pytest.fixture(scope="module")
def golden():
  return dict(np.load(DATA / "span_golden.npz"))


def _state_dict(golden, name):
  prefix = f"{name}/sd/"
  return {k[len(prefix):]: v for k, v in golden.items() if k.startswith(prefix)}


def _deploy_layout(state_dict):
  """A training state dict as a re-parameterised checkpoint: eval_conv, conv_cat, upsampler."""
  return {k: v for k, v in state_dict.items()
          if not any(f".{b}." in k for b in ("sk", "conv.0", "conv.1", "conv.2"))}


def _shapes(model, channels):
  return jax.eval_shape(lambda key: model.init(key, jnp.zeros((1, 8, 8, channels))), _KEY)


def _convert(state_dict, hparams, **overrides):
  """(model, variables) of `state_dict` converted as the interop path does."""
  model = span.SPAN(**dict(hparams, **overrides))
  like = _shapes(model, hparams["num_in_ch"])
  converted = span_family.to_jaxsr(state_dict, dict(hparams, **overrides))
  return model, interop_variables.state_dict_to_variables(converted, like)


def _assert_reproduces(model, variables, golden, name, ops, inputs=range(NUM_INPUTS)):
  apply = jax.jit(model.apply)  # One compilation per input shape.
  for i in inputs:
    x, expected = golden[f"{name}/input_{i}"], golden[f"{name}/output_{i}"]
    y = np.asarray(apply(variables, x))
    assert y.shape == expected.shape and y.dtype == np.float32
    utils.assert_close(y, expected, ops=ops, err_msg=f"{name} {i}")


def _ops(state_dict, hparams):
  """Rounding steps of the computation (the merged convs): `network_ops` of the deploy form."""
  return utils.network_ops(_convert(state_dict, hparams, deploy=True)[1])


@pytest.mark.parametrize("label", sorted(RELEASED))
def test_released_configurations_have_the_golden_parameter_counts(label, golden):
  scale, channels = RELEASED[label]
  train = _shapes(span.SPAN(scale=scale, feature_channels=channels), 3)["params"]
  deploy = _shapes(span.SPAN(scale=scale, feature_channels=channels, deploy=True), 3)["params"]
  assert layers.count_params(train) == int(golden[f"counts/{label}_train"])
  assert layers.count_params(deploy) == int(golden[f"counts/{label}_deploy"])
  # spandrel's module holds both: the branches and every merged eval_conv.
  eval_convs = {k: v for k, v in deploy.items() if k not in ("conv_cat", "upsampler_0")}
  assert layers.count_params(train) + layers.count_params(eval_convs) == int(
      golden[f"counts/{label}"])
  if label in PUBLISHED_K:
    assert round(layers.count_params(deploy) / 1000) == PUBLISHED_K[label]


def test_default_is_the_released_48_channel_x4_model(golden):
  assert layers.count_params(_shapes(span.SPAN(), 3)["params"]) == int(
      golden["counts/x4_ch48_train"])


@pytest.mark.numerics
@pytest.mark.parametrize("deploy", [False, True], ids=["branches", "merged_by_to_jaxsr"])
@pytest.mark.parametrize("name", VARIANTS)
def test_converted_weights_reproduce_spandrel_on_odd_sizes(name, deploy, golden):
  state_dict = _state_dict(golden, name)
  hparams = json.loads(str(golden[f"{name}/hparams"]))
  model, variables = _convert(state_dict, hparams, deploy=deploy)
  # The merged conversion on one input (batch 2, odd sizes): it differs only in the weights.
  _assert_reproduces(model, variables, golden, name, _ops(state_dict, hparams),
                     inputs=(1,) if deploy else range(NUM_INPUTS))


@pytest.mark.numerics
def test_reparameterised_checkpoint_reproduces_spandrel(golden):
  state_dict = _deploy_layout(_state_dict(golden, "x4"))
  hparams = span_family.detect(state_dict)
  assert hparams == dict(json.loads(str(golden["x4/hparams"])), deploy=True)
  model, variables = _convert(state_dict, hparams)
  _assert_reproduces(model, variables, golden, "x4", utils.network_ops(variables), inputs=(1,))
  with pytest.raises(ValueError, match="build the model with deploy=True"):
    span_family.to_jaxsr(state_dict, dict(hparams, deploy=False))


@pytest.mark.numerics
def test_merges_equal_spandrels_eval_conv(golden):
  """numpy (to_jaxsr, deploy) and JAX (every forward) merges against update_params'."""
  state_dict = _state_dict(golden, "x4")
  for prefix in span_family.CONV3XC:
    weight, bias = span_family.merge_conv3xc(state_dict, prefix)
    branch = lambda n: (layers.torch_conv_weight_to_flax(state_dict[f"{prefix}.{n}.weight"]),
                        state_dict[f"{prefix}.{n}.bias"])
    kernel, jax_bias = span.merge_conv3xc(*(branch(n) for n in ("sk", "conv.0", "conv.1",
                                                                "conv.2")))
    expected = state_dict[f"{prefix}.eval_conv.weight"], state_dict[f"{prefix}.eval_conv.bias"]
    ops = 2 * 9 * state_dict[f"{prefix}.conv.1.weight"].shape[1]  # The products' sums.
    for merged, want in [(weight, expected[0]), (bias, expected[1]), (jax_bias, expected[1]),
                         (kernel, layers.torch_conv_weight_to_flax(expected[0]))]:
      utils.assert_close(merged, want, ops=ops, err_msg=prefix)


def test_stale_eval_conv_and_no_norm_are_dropped(golden):
  state_dict = _state_dict(golden, "x2_no_norm")
  hparams = span_family.detect(state_dict)
  assert "no_norm" in state_dict and not hparams["norm"]
  stale = {k: (np.zeros_like(v) if ".eval_conv." in k else v) for k, v in state_dict.items()}
  converted = span_family.to_jaxsr(stale, hparams)
  assert sorted(converted) == sorted(k for k in state_dict
                                     if ".eval_conv." not in k and k != "no_norm")
  assert all(converted[k] is state_dict[k] for k in converted)
  merged = span_family.to_jaxsr(stale, dict(hparams, deploy=True))  # From the branches.
  assert not any(f".{b}." in k for k in merged for b in ("sk", "conv.0")) and np.all(
      np.abs(merged["conv_1.eval_conv.weight"]) > 0)


def test_detect_gives_every_variant_and_layout(golden):
  for name in VARIANTS:
    state_dict = _state_dict(golden, name)
    assert span_family.detect(state_dict) == json.loads(str(golden[f"{name}/hparams"])), name
  x4 = _state_dict(golden, "x4")
  for layout, deploy in [(x4, False), (_deploy_layout(x4), True)]:  # x8: 3 * 64 channels.
    x8 = dict(layout, **{"upsampler.0.weight": np.zeros((192, 4, 3, 3), np.float32),
                         "upsampler.0.bias": np.zeros((192,), np.float32)})
    assert span_family.detect(x8) == dict(scale=8, num_in_ch=3, num_out_ch=3,
                                          feature_channels=4, norm=True, deploy=deploy)
  with pytest.raises(ValueError, match="not out \\* scale\\^2"):
    span_family.detect(dict(x4, **{"upsampler.0.weight": np.zeros((7, 4, 3, 3))}))


def test_detect_declines_other_families():
  paths = sorted((DATA / "swinir").glob("*.pth")) + sorted((DATA / "basicsr").glob("*.pth"))
  assert len(paths) >= 10
  for path in paths:
    state_dict = torch_io.select_params(torch_io.load_state_dict(str(path)))
    assert span_family.detect(state_dict) is None, path.name
  rng = np.random.default_rng(0)
  assert span_family.detect({}) is None
  assert span_family.detect({"conv_1.sk.weight": rng.random((4, 3, 1, 1)),
                             "conv_cat.weight": rng.random(3), "upsampler.0.weight": 1.0}) is None
  assert span_family.detect({f"k{i}": rng.random((3, 3)) for i in range(5)}) is None


@pytest.mark.numerics
def test_bfloat16_stays_close_to_float32(golden):
  hparams = json.loads(str(golden["x4/hparams"]))  # Inputs scaled by 255 (norm).
  model, variables = _convert(_state_dict(golden, "x4"), hparams)
  x = golden["x4/input_1"]
  y32 = np.asarray(jax.jit(model.apply)(variables, x))
  y16 = np.asarray(jax.jit(span.SPAN(**hparams, dtype=jnp.bfloat16).apply)(variables, x))
  assert y16.dtype == np.float32 and np.all(np.isfinite(y16))
  # 21 convs, each rounding its inputs, weights and output to 8 bits: a few %, not 100s.
  error = np.abs(y16 - y32) / np.max(np.abs(y32))
  assert error.max() < 0.1 and error.mean() < 0.02, (error.max(), error.mean())


@pytest.mark.numerics
def test_any_size_scales_and_unrolled_blocks(golden):
  hparams = json.loads(str(golden["x2_no_norm/hparams"]))  # Golden weights: no jit of init.
  model, variables = _convert(_state_dict(golden, "x2_no_norm"), hparams)
  assert model.input_multiple == 1
  apply = jax.jit(model.apply)
  for shape in [(1, 6, 7, 3), (1, 1, 1, 3)]:
    y = apply(variables, jnp.full(shape, 0.5))
    assert y.shape == (shape[0], 2 * shape[1], 2 * shape[2], 3) and y.dtype == jnp.float32
  x = np.random.default_rng(1).random((1, 6, 7, 3), np.float32)
  unrolled = span.SPAN(**hparams, scan_blocks=False)
  utils.assert_close(jax.jit(unrolled.apply)(variables, x), apply(variables, x),
                     ops=utils.network_ops(variables))
  x8 = span.SPAN(scale=8, feature_channels=4, deploy=True)
  assert jax.eval_shape(x8.init_with_output, _KEY, jnp.zeros((1, 3, 5, 3)))[0].shape == (
      1, 24, 40, 3)


def test_bad_options_are_clear_errors():
  with pytest.raises(ValueError, match="one rgb_mean value per input channel"):
    span.SPAN(num_in_ch=1, num_out_ch=1)
  with pytest.raises(ValueError, match="does not support scale 5"):
    span.SPAN(scale=5)
  span.SPAN(num_in_ch=1, num_out_ch=1, norm=False)  # Grayscale without the mean shift is fine.
