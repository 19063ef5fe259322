"""Tests for jaxsr.models.seed.SeedGenerator: sizes, the bilinear residual, BatchNorm state,
the transposed conv's PyTorch semantics and the registry entry."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import models
from jaxsr.models import layers

from tests import utils

SMALL = dict(num_feat=4, num_down=2, kernel_size=3)


def _key(seed=0):
  # 'rbg' keys compile fast on XLA:CPU (see tests/test_models.py).
  return jax.random.key(seed, impl="rbg")


def _rand(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(size=shape), jnp.float32)


@functools.cache
def _jitted(model):
  return (jax.jit(model.init),
          jax.jit(model.apply, static_argnames=("train", "mutable", "capture_intermediates")))


@functools.cache
def _small(scale, shape):
  """(model, variables, x) for the SMALL config, x of `shape`."""
  model = models.create_model("seed", scale, **SMALL)
  x = _rand(shape)
  return model, _jitted(model)[0](_key(), x), x


def _apply(model, variables, x, **kwargs):
  return _jitted(model)[1](variables, x, **kwargs)


def test_param_count_of_default_config():
  model = models.create_model("seed", 4)
  variables = jax.eval_shape(model.init, _key(), jax.ShapeDtypeStruct((1, 8, 8, 3), jnp.float32))
  expected = (9 * 9 * 3 * 64 + 64                    # conv_first
              + 16 * (64 * 128 + 128 * 256)          # conv_down1, conv_down2
              + 16 * (256 * 128 + 128 * 64 + 2 * 64 * 64)  # conv_up1..conv_up4
              + 2 * (128 + 256) + 2 * (128 + 3 * 64)  # bn_down*, bn_up* (scale, bias)
              + 9 * 9 * (64 + 3) * 3 + 3)            # conv_last on [decoder, bilinear LR]
  assert models.count_params(variables["params"]) == expected == 1_475_100
  assert set(variables["batch_stats"]) == {"bn_down1", "bn_down2"} | {
      f"bn_up{j}" for j in range(1, 5)}


@pytest.mark.parametrize("scale,shape", [(4, (2, 13, 17, 3)), (2, (1, 5, 3, 3)),
                                         (4, (1, 1, 2, 3))])
def test_output_size_is_exact_for_any_lr_size(scale, shape):
  model = models.create_model("seed", scale, **SMALL)
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  variables = jax.eval_shape(model.init, _key(), x)
  y = jax.eval_shape(functools.partial(model.apply, train=False), variables, x)
  assert y.shape == (shape[0], shape[1] * scale, shape[2] * scale, 3)
  assert y.dtype == jnp.float32


@pytest.mark.exact("eval mode returns the statistics it was given, untouched")
def test_forward_on_odd_size_is_finite_and_deterministic_in_eval_mode():
  model, variables, x = _small(4, (2, 13, 17, 3))
  y, state = _apply(model, variables, x, train=False, mutable=("batch_stats",))
  assert y.shape == (2, 52, 68, 3) and np.all(np.isfinite(y))
  jax.tree_util.tree_map(np.testing.assert_array_equal, state["batch_stats"],
                         variables["batch_stats"])


@pytest.mark.numerics
def test_zero_final_conv_gives_the_bilinear_upsampled_input():
  model, variables, x = _small(4, (2, 13, 17, 3))
  params = dict(variables["params"])
  params["conv_last"] = jax.tree_util.tree_map(jnp.zeros_like, params["conv_last"])
  y = _apply(model, {**variables, "params": params}, x, train=False)
  # The model's program against eager upsampling: two taps per axis (plus an exact zero).
  utils.assert_close(y, layers.upsample_bilinear(x, 4), ops=4)


def test_batchnorm_updates_running_stats_only_in_train_mode():
  model, variables, x = _small(4, (2, 13, 17, 3))
  y_train, state = _apply(model, variables, x, train=True, mutable=("batch_stats",))
  for name, old in variables["batch_stats"].items():
    assert not np.allclose(state["batch_stats"][name]["mean"], old["mean"]), name
  y_eval = _apply(model, variables, x, train=False)
  assert not np.allclose(y_train, y_eval)  # batch vs running statistics
  with pytest.raises(Exception, match="batch_stats"):  # train mode must be allowed to mutate
    _apply(model, variables, x, train=True)


@pytest.mark.numerics
def test_transposed_conv_is_pytorch_conv_transpose2d():
  """conv_up1 = torch ConvTranspose2d(in, out, 4, stride=2, padding=1) with weight
  `[in, out, 4, 4]` = kernel `[4, 4, out, in]`.transpose(3, 2, 0, 1)."""
  model, variables, x = _small(4, (2, 13, 17, 3))
  _, state = _apply(model, variables, x, train=False, mutable=("intermediates",),
                    capture_intermediates=lambda mdl, _: mdl.name in ("bn_down2", "conv_up1"))
  inter = state["intermediates"]
  feat = np.asarray(inter["bn_down2"]["__call__"][0], np.float64)
  feat = np.where(feat > 0, feat, 0.2 * feat)  # conv_up1's input [B, 4, 5, C]
  weight = np.asarray(variables["params"]["conv_up1"]["kernel"]).transpose(3, 2, 0, 1)
  b, h, w, _ = feat.shape
  full = np.zeros((b, 2 * h + 2, 2 * w + 2, weight.shape[1]))  # before cropping padding 1
  for i, j in np.ndindex(h, w):  # torch: out[2i - 1 + ky, 2j - 1 + kx] += x[i, j] W[:, :, ky, kx]
    full[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += np.einsum("bc,cokl->bklo", feat[:, i, j], weight)
  # float32 against float64: 4x4 taps (about 2x2 of them per output) x the input channels.
  utils.assert_close(inter["conv_up1"]["__call__"][0], full[:, 1:-1, 1:-1],
                     ops=4 * feat.shape[-1] + 1)


def test_gradient_flows_to_params_and_input():
  model, variables, x = _small(2, (1, 5, 3, 3))

  def loss(params, x):
    y, _ = model.apply({**variables, "params": params}, x, train=True,
                       mutable=["batch_stats"])
    return jnp.mean(jnp.square(y - 0.5))

  g_params, g_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(variables["params"], x)
  assert np.all(np.isfinite(g_x)) and np.any(g_x != 0)
  for module, g in g_params.items():
    if "kernel" in g:
      assert np.all(np.isfinite(g["kernel"])) and np.any(g["kernel"] != 0), module


def test_registry_entry():
  assert models.MODELS["seed"] is models.SeedGenerator
  assert models.supported_scales("seed") == (2, 4)
  assert {"num_feat", "num_down", "kernel_size"} <= set(models.model_options("seed"))
  with pytest.raises(ValueError, match=r"scale 3.*\(2, 4\)"):
    models.create_model("seed", 3)
  with pytest.raises(ValueError, match="SeedGenerator.*scale 8"):
    models.SeedGenerator(scale=8)
