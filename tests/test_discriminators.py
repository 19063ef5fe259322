"""Tests for jaxsr.models.discriminators: BasicSR counts and names, state handling, spectral
norm, the strided conv, gradients and the registry."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import models
from jaxsr.models import discriminators as D
from jaxsr.models import layers

from tests import utils

# Small configs (num_feat=4) and their input shapes [B, H, W, 3].
SMALL = {
    "vgg_style": (dict(num_feat=4, input_size=128), (2, 128, 128, 3)),
    "unet_sn": (dict(num_feat=4), (2, 16, 24, 3)),
    "seed": (dict(num_feat=4, num_down=2, input_size=16), (2, 16, 16, 3)),
}


def _key(seed=0):
  # 'rbg' keys compile fast on XLA:CPU (see tests/test_models.py).
  return jax.random.key(seed, impl="rbg")


def _rand(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(size=shape), jnp.float32)


def _paths(tree):
  return {tuple(k.key for k in path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]}


@functools.cache
def _small(name):
  """(disc, variables, x) for the SMALL config of `name` (jitted init: one compile)."""
  kwargs, shape = SMALL[name]
  disc = models.create_discriminator(name, **kwargs)
  x = _rand(shape)
  return disc, jax.jit(disc.init)(_key(), x), x


@functools.cache
def _jitted_apply(disc):
  return jax.jit(disc.apply, static_argnames=("train", "mutable", "capture_intermediates"))


def _apply(disc, variables, x, mutable=False, **kwargs):
  """Jitted `disc.apply` (eager Linen applies compile op by op: slow on CPU)."""
  return _jitted_apply(disc)(variables, x, mutable=tuple(mutable or ()) or False, **kwargs)


# ---------------------------------------------------------------- counts, names, shapes


def _vgg_count(nf, stages):
  """Hand count of BasicSR's VGGStyleDiscriminator parameters (3 input channels)."""
  ch = [nf * min(2**i, 8) for i in range(stages)]
  count = 3 * nf * 9 + nf + nf * nf * 16 + 2 * nf  # conv0_0 (bias), conv0_1, bn0_1
  for i in range(1, stages):
    count += ch[i - 1] * ch[i] * 9 + ch[i] * ch[i] * 16 + 4 * ch[i]  # conv_0, conv_1, 2 bn
  return count + ch[-1] * 16 * 100 + 100 + 101  # linear1, linear2


def test_vgg_hand_count_agrees_with_basicsr_figure():
  assert _vgg_count(64, 5) == 14_499_401


@pytest.mark.parametrize("name,kwargs,shape,expected", [
    ("vgg_style", dict(num_in_ch=3, num_feat=64, input_size=128), (1, 128, 128, 3), 14_499_401),
    ("vgg_style", dict(num_feat=64, input_size=256), (1, 256, 256, 3), _vgg_count(64, 6)),
    ("unet_sn", dict(num_in_ch=3, num_feat=64), (1, 64, 64, 3), 4_376_897),
    # conv0 + four (conv 4x4 + bn) with 128, 256, 512, 512 channels + linear(512 * 8 * 8).
    ("seed", dict(num_feat=64), (1, 128, 128, 3),
     3 * 64 * 9 + 64 + 16 * (64 * 128 + 128 * 256 + 256 * 512 + 512 * 512)
     + 2 * (128 + 256 + 512 + 512) + 512 * 64 + 1),
])
def test_param_counts(name, kwargs, shape, expected):
  disc = models.create_discriminator(name, **kwargs)
  variables = jax.eval_shape(disc.init, _key(), jax.ShapeDtypeStruct(shape, jnp.float32))
  assert models.count_params(variables["params"]) == expected


def test_vgg_param_tree_follows_basicsr_names():
  disc, variables, _ = _small("vgg_style")
  convs = ["conv0_0", "conv0_1"] + [f"conv{i}_{j}" for i in range(1, 5) for j in (0, 1)]
  expected = {("conv0_0", "bias"), ("linear1", "bias"), ("linear2", "bias")}
  expected |= {layers.flax_param_path(f"{m}.weight") for m in convs + ["linear1", "linear2"]}
  expected |= {(c.replace("conv", "bn"), leaf) for c in convs[1:] for leaf in ("scale", "bias")}
  assert _paths(variables["params"]) == expected
  assert _paths(variables["batch_stats"]) == {
      (c.replace("conv", "bn"), leaf) for c in convs[1:] for leaf in ("mean", "var")}


def test_unet_param_tree_follows_basicsr_names():
  _, variables, _ = _small("unet_sn")
  sn = [f"conv{i}" for i in range(1, 9)]
  assert _paths(variables["params"]) == (
      {(c, "kernel") for c in sn} | {(c, leaf) for c in ("conv0", "conv9")
                                     for leaf in ("kernel", "bias")})
  assert _paths(variables["batch_stats"]) == {(c, leaf) for c in sn for leaf in ("u", "v")}
  for c in sn:
    kernel = variables["params"][c]["kernel"]
    u, v = variables["batch_stats"][c]["u"], variables["batch_stats"][c]["v"]
    assert u.shape == (kernel.shape[-1],) and v.shape == (np.prod(kernel.shape[:-1]),)
    # float32 normalisation and norm: sums of squares, a square root and a division each.
    utils.assert_close(jnp.linalg.norm(u), 1.0, ops=2 * u.size + 4)
    utils.assert_close(jnp.linalg.norm(v), 1.0, ops=2 * v.size + 4)


@pytest.mark.exact("eval mode returns the statistics it was given, untouched")
@pytest.mark.parametrize("name", sorted(SMALL))
def test_output_shape_dtype_and_eval_mode_is_pure(name):
  disc, variables, x = _small(name)
  logits, state = _apply(disc, variables, x, train=False, mutable=["batch_stats"])
  expected = (2, 16, 24, 1) if name == "unet_sn" else (2, 1)
  assert logits.shape == expected and logits.dtype == jnp.float32
  assert np.all(np.isfinite(logits))
  jax.tree_util.tree_map(np.testing.assert_array_equal, state["batch_stats"],
                         variables["batch_stats"])


@pytest.mark.parametrize("name", sorted(SMALL))
def test_bfloat16_compute_returns_float32_logits(name):
  kwargs, shape = SMALL[name]
  disc = models.create_discriminator(name, dtype=jnp.bfloat16, **kwargs)
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  variables = jax.eval_shape(disc.init, _key(), x)
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(variables))
  assert jax.eval_shape(functools.partial(disc.apply, train=False), variables,
                        x).dtype == jnp.float32


# ---------------------------------------------------------------- wrong sizes


def test_wrong_sizes_raise_value_errors():
  with pytest.raises(ValueError, match="128 or 256"):
    D.VGGStyleDiscriminator(input_size=64)
  with pytest.raises(ValueError, match="128 or 256"):
    models.create_discriminator("vgg_style", input_size=192)
  with pytest.raises(ValueError, match="multiple of 2\\*\\*num_down = 16"):
    models.create_discriminator("seed", input_size=100)
  cases = [
      ("vgg_style", dict(num_feat=4), (1, 64, 64, 3), "128x128.*64x64"),
      ("vgg_style", dict(num_feat=4), (1, 128, 64, 3), "128x128.*128x64"),
      ("unet_sn", dict(num_feat=4), (1, 12, 16, 3), "divisible by 8.*12x16"),
      ("seed", dict(num_feat=4, input_size=32), (1, 16, 16, 3), "32x32.*16x16"),
      ("seed", dict(num_feat=4, input_size=32), (1, 32, 32, 1), r"\[B, H, W, 3\]"),
  ]
  for name, kwargs, shape, match in cases:
    disc = models.create_discriminator(name, **kwargs)
    with pytest.raises(ValueError, match=match):
      jax.eval_shape(disc.init, _key(), jax.ShapeDtypeStruct(shape, jnp.float32))


# ---------------------------------------------------------------- BatchNorm state


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["vgg_style", "seed"])
def test_batchnorm_updates_running_stats_like_torch_only_in_train_mode(name):
  disc, variables, x = _small(name)
  bn, conv = ("bn0_1", "conv0_1") if name == "vgg_style" else ("bn1", "conv1")
  _, state = _apply(disc, variables, x, train=True, mutable=["batch_stats", "intermediates"],
                    capture_intermediates=lambda mdl, _: mdl.name == conv)
  feat = np.asarray(state["intermediates"][conv]["__call__"][0], np.float64)
  stats = state["batch_stats"][bn]
  # PyTorch momentum 0.1 from the initial (mean 0, var 1); flax averages the biased variance.
  # float32 sums of n = B*H*W values (squares for the variance) against float64: n steps, on
  # the scale of the terms summed (a mean near 0 is a sum of larger values that cancel).
  n = feat[..., 0].size
  utils.assert_close(stats["mean"], 0.1 * feat.mean((0, 1, 2)), ops=n,
                     magnitude=0.1 * np.abs(feat).mean(), ulps=1)
  utils.assert_close(stats["var"], 0.9 + 0.1 * feat.var((0, 1, 2)), ops=2 * n,
                     magnitude=0.1 * np.square(feat).mean(), ulps=1)
  # Every BatchNorm moved; eval mode then uses the new statistics (different logits).
  for key, old in variables["batch_stats"].items():
    assert not np.allclose(state["batch_stats"][key]["mean"], old["mean"]), key
  before = _apply(disc, variables, x, train=False)
  after = _apply(disc, {**variables, "batch_stats": state["batch_stats"]}, x, train=False)
  assert not np.allclose(before, after)


@pytest.mark.numerics
def test_vgg_flattens_in_pytorch_nchw_order():
  """linear1 sees the last features in PyTorch's `view(B, -1)` order of an NCHW tensor."""
  disc, variables, x = _small("vgg_style")
  _, state = _apply(disc, variables, x, train=False, mutable=["intermediates"],
                    capture_intermediates=lambda mdl, _: mdl.name in ("bn4_1", "linear1"))
  feat = np.asarray(state["intermediates"]["bn4_1"]["__call__"][0])  # [B, 4, 4, C]
  feat = np.where(feat > 0, feat, 0.2 * feat)
  flat = np.stack([feat[b].transpose(2, 0, 1).ravel() for b in range(2)])  # torch order
  p = variables["params"]["linear1"]
  # A dot product of the flat features (plus the bias) in float32, in XLA and in numpy.
  utils.assert_close(state["intermediates"]["linear1"]["__call__"][0],
                     flat @ np.asarray(p["kernel"]) + np.asarray(p["bias"]),
                     ops=flat.shape[1] + 1)


# ---------------------------------------------------------------- spectral norm


def _torch_matrix(kernel):
  """`[k, k, in, out]` -> PyTorch's `weight.reshape(out, -1)` `[out, in*k*k]`."""
  return np.asarray(kernel).transpose(3, 2, 0, 1).reshape(kernel.shape[-1], -1)


@pytest.mark.numerics
def test_spectral_normalize_one_step_matches_torch_formulas():
  rng = np.random.default_rng(0)
  kernel = rng.normal(size=(3, 3, 2, 5)).astype(np.float32)
  u0 = rng.normal(size=5)
  u0 /= np.linalg.norm(u0)
  w = _torch_matrix(kernel)
  v = w.T @ u0 / np.linalg.norm(w.T @ u0)
  u1 = w @ v / np.linalg.norm(w @ v)
  out, u, v1, sigma = D.spectral_normalize(jnp.asarray(kernel), jnp.asarray(u0, jnp.float32),
                                           True)
  # float32 against float64: W^T u (5 terms), its norm (18), W v (18), its norm (5), u . W v.
  ops = 5 + 18 + 18 + 5 + 5
  utils.assert_close(u, u1, ops=ops)
  torch_shape = (5, 2, 3, 3)  # v: torch's column order; v1: the kernel's.
  utils.assert_close(v1, D.spectral_norm_v_to_flax(v, torch_shape), ops=ops)
  utils.assert_close(sigma, u1 @ w @ v, ops=ops)
  utils.assert_close(out, kernel / (u1 @ w @ v), ops=ops + 1)
  # Without update: u unchanged, sigma = u0 . W v = ||W^T u0|| with no stored v ...
  _, u, _, sigma = D.spectral_normalize(jnp.asarray(kernel), jnp.asarray(u0, jnp.float32), False)
  utils.assert_close(u, u0, ops=1)  # u0 rounded to float32.
  utils.assert_close(sigma, np.linalg.norm(w.T @ u0), ops=ops)
  # ... and u0 . W v0 with a stored v0 (torch's eval mode: no power iteration).
  v0 = rng.normal(size=w.shape[1])
  v0 /= np.linalg.norm(v0)
  out, u, v, sigma = D.spectral_normalize(jnp.asarray(kernel), jnp.asarray(u0, jnp.float32),
                                          False, v=D.spectral_norm_v_to_flax(v0, torch_shape))
  utils.assert_close(v, D.spectral_norm_v_to_flax(v0, torch_shape), ops=1)  # v0 in float32.
  # u0 . W v0 for a random v0 is small against its terms |u0|^T |W| |v0|: the error is relative
  # to those, and so is `out`'s (kernel / sigma).
  sigma_ref = u0 @ w @ v0
  terms = np.abs(u0) @ np.abs(w) @ np.abs(v0)
  utils.assert_close(sigma, sigma_ref, ops=5 * 18, magnitude=terms)
  rtol = utils.tolerance(ops=5 * 18, magnitude=terms)["atol"] / abs(sigma_ref)
  np.testing.assert_allclose(out, kernel / sigma_ref, rtol=rtol + utils.tolerance()["rtol"])


@pytest.mark.exact("eval mode returns the power iteration's u and v untouched")
@pytest.mark.numerics
def test_spectral_norm_conv_converges_to_largest_singular_value():
  x = _rand((1, 8, 8, 3))
  make = lambda update: D.SpectralNormConv2d(6, kernel_size=4, stride=2, use_bias=False,
                                             update=update)
  variables = jax.jit(make(False).init)(_key(), x)
  kernel = variables["params"]["kernel"]
  s_max = np.linalg.svd(_torch_matrix(kernel), compute_uv=False)[0]

  @jax.jit
  def train_steps(stats):
    def step(_, stats):
      return make(True).apply({**variables, "batch_stats": stats}, x,
                              mutable=["batch_stats"])[1]["batch_stats"]
    return jax.lax.fori_loop(0, 100, step, stats)

  stats = train_steps(variables["batch_stats"])
  sigma = np.linalg.norm(_torch_matrix(kernel).T @ np.asarray(stats["u"]))
  assert not np.allclose(stats["u"], variables["batch_stats"]["u"])
  np.testing.assert_allclose(sigma, s_max, rtol=1e-4)  # Convergence of the iteration, not rounding.
  # Eval mode: the conv uses kernel / sigma and changes nothing.
  trained = {**variables, "batch_stats": stats}
  y, new_state = _apply(make(False), trained, x, mutable=["batch_stats"])
  jax.tree_util.tree_map(np.testing.assert_array_equal, new_state["batch_stats"], stats)
  # sigma is s_max to 1e-4 (above), far more than rounding.
  np.testing.assert_allclose(y, layers.conv2d(x, kernel / s_max, stride=2, padding=1),
                             rtol=1e-3, atol=1e-5)


# ---------------------------------------------------------------- strided conv, gradients


@pytest.mark.numerics
def test_strided_conv_matches_pytorch_definition():
  """`layers.conv2d(stride=2, padding=1)` = torch Conv2d(k=4, s=2, p=1) cross-correlation."""
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 6, 8, 3))
  kernel = rng.normal(size=(4, 4, 3, 5))
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  expected = np.zeros((2, 3, 4, 5))
  for b, i, j in np.ndindex(2, 3, 4):
    expected[b, i, j] = np.einsum("hwc,hwco->o", padded[b, 2 * i:2 * i + 4, 2 * j:2 * j + 4],
                                  kernel)
  y = layers.conv2d(jnp.asarray(x, jnp.float32), jnp.asarray(kernel, jnp.float32), 2, 1)
  # float32 against float64: 4x4 taps x 3 channels, and the inputs' rounding to float32.
  utils.assert_close(y, expected, ops=4 * 4 * 3 + 1)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_gradient_flows_to_input_and_params(name):
  disc, variables, x = _small(name)

  def loss(params, x):
    logits, _ = disc.apply({**variables, "params": params}, x, train=True,
                           mutable=["batch_stats"])
    return jnp.mean(jnp.square(logits - 1.0))  # nonzero at init; sum of BN outputs is not

  g_params, g_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(variables["params"], x)
  assert np.all(np.isfinite(g_x)) and np.any(g_x != 0)
  for path, g in jax.tree_util.tree_flatten_with_path(g_params)[0]:
    assert np.all(np.isfinite(g)), path
  # Every conv kernel gets a gradient (spectral-norm convs included).
  for module, g in g_params.items():
    if "kernel" in g:
      assert np.any(g["kernel"] != 0), module


# ---------------------------------------------------------------- registry


def test_registry_and_options():
  assert set(models.DISCRIMINATORS) == {"vgg_style", "unet_sn", "seed"}
  assert models.DISCRIMINATORS["unet_sn"] is D.UNetDiscriminatorSN
  assert set(models.discriminator_options("vgg_style")) == {
      "param_dtype", "num_in_ch", "num_feat", "input_size"}
  assert "skip_connection" in models.discriminator_options("unet_sn")
  with pytest.raises(ValueError, match=r"patchgan.*\['seed', 'unet_sn', 'vgg_style'\]"):
    models.create_discriminator("patchgan")
  with pytest.raises(ValueError, match=r"num_feats.*unet_sn.*num_feat"):
    models.create_discriminator("unet_sn", num_feats=8)
  with pytest.raises(ValueError, match=r"num_down.*vgg_style.*input_size"):
    models.create_discriminator("vgg_style", num_down=3)
  with pytest.raises(ValueError, match="Unknown discriminator 'nope'"):
    models.discriminator_options("nope")
  disc = models.create_discriminator("seed", dtype=jnp.bfloat16, num_feat=8, num_down=3)
  assert (disc.dtype, disc.num_feat, disc.num_down) == (jnp.bfloat16, 8, 3)
