"""Tests for jaxsr.models: BasicSR parity (names, counts, ops, init) and the registry."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import models
from jaxsr.models import layers
from jaxsr.ops import imresize as imresize_ops

from tests import utils

# Small configs so that forward passes stay fast on CPU.
SMALL = {
    "msrresnet": dict(num_feat=8, num_block=2),
    "edsr": dict(num_feat=8, num_block=2),
    "rrdbnet": dict(num_feat=8, num_block=1, num_grow_ch=4),
    "bicubic": {},
    "seed": dict(num_feat=8, num_down=2),
    "srvgg": dict(num_feat=8, num_conv=2),
    "swinir": dict(embed_dim=8, depths=(1,), num_heads=(2,), window_size=4, num_feat=8),
    "span": dict(feature_channels=4),
    "rcan": dict(n_resgroups=1, n_resblocks=1, n_feats=8, reduction=4),
    "omnisr": dict(num_feat=8, res_num=1, block_num=1, window_size=4),
    "plksr": dict(dim=8, n_blocks=1, kernel_size=5),
    "realplksr": dict(dim=8, n_blocks=1, kernel_size=5, norm_groups=2),
    "hat": dict(embed_dim=8, depths=(2,), num_heads=(2,), window_size=4, compress_ratio=2,
                squeeze_factor=2, num_feat=8),
    "dat": dict(embed_dim=16, depth=(2,), num_heads=(2,), split_size=(2, 4)),
}
# Options a model needs at some scales (SwinIR x1 has no upsampler).
SCALE_OPTIONS = {("swinir", 1): dict(upsampler="")}


def _key(seed=0):
  # 'rbg' keys: on XLA:CPU the default partitionable threefry takes up to ~20 s to compile for
  # some 4-D kernel shapes (e.g. [3, 3, 8, 9]); the models do not depend on the key type.
  return jax.random.key(seed, impl="rbg")


def _rand(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(size=shape), jnp.float32)


# One input shape for all model-level numerics, so that inits and compiled ops are shared.
X = _rand((1, 8, 8, 3))


@functools.cache
def _small(name, scale=4, **overrides):
  """(model, variables) for the SMALL config of `name`, initialised on inputs shaped like X."""
  model = models.create_model(name, scale, **{**SMALL[name], **overrides})
  return model, model.init(_key(), jnp.zeros_like(X))


# ---------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("name,scale,kwargs,expected", [
    ("msrresnet", 4, dict(num_feat=64, num_block=16), 1_517_571),
    ("rrdbnet", 4, dict(num_feat=64, num_block=23, num_grow_ch=32), 16_697_987),
    ("edsr", 2, dict(num_feat=64, num_block=16), 1_369_859),
    ("edsr", 4, dict(num_feat=64, num_block=16), 1_517_571),
    ("bicubic", 4, {}, 0),
])
def test_param_count_matches_basicsr(name, scale, kwargs, expected):
  model = models.create_model(name, scale, **kwargs)
  shapes = jax.eval_shape(model.init, _key(), jnp.zeros((1, 8, 8, 3)))
  assert models.count_params(shapes) == expected


# ---------------------------------------------------------------- shapes, dtypes, jit


@pytest.mark.parametrize("name,scale", [
    (name, scale) for name in models.MODELS for scale in models.supported_scales(name)])
def test_output_shape_and_dtype(name, scale):
  model = models.create_model(name, scale, **SMALL[name], **SCALE_OPTIONS.get((name, scale), {}))
  x = jax.ShapeDtypeStruct((2, 8, 12, 3), jnp.float32)
  variables = jax.eval_shape(model.init, _key(), x)
  y = jax.eval_shape(model.apply, variables, x)
  assert y.shape == (2, 8 * scale, 12 * scale, 3)
  assert y.dtype == jnp.float32


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["msrresnet", "edsr", "rrdbnet"])
def test_bfloat16_compute_returns_float32_close_to_float32(name):
  model_f32, variables = _small(name)
  model_bf16 = models.create_model(name, 4, dtype=jnp.bfloat16, **SMALL[name])
  bf16_shapes = jax.eval_shape(model_bf16.init, _key(), X)
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(bf16_shapes))
  y_bf16 = jax.jit(model_bf16.apply)(variables, X)
  y_f32 = model_f32.apply(variables, X)
  assert y_bf16.dtype == jnp.float32
  assert not np.array_equal(y_bf16, y_f32)  # bf16 really was used.
  # A bfloat16 rounding per layer output (float32 accumulation), against float32.
  utils.assert_close(y_bf16, y_f32, jnp.bfloat16, utils.network_ops(variables, jnp.bfloat16),
                     ulps=1)


@pytest.mark.numerics
def test_jit_matches_eager():
  model, variables = _small("msrresnet")
  y_jit = jax.jit(model.apply)(variables, X)
  utils.assert_close(y_jit, model.apply(variables, X), ops=utils.network_ops(variables))


# ---------------------------------------------------------------- registry errors


def test_rrdbnet_scale3_raises_at_construction():
  with pytest.raises(ValueError, match=r"RRDBNet.*scale 3.*\(1, 2, 4, 8\)"):
    models.RRDBNet(scale=3)
  with pytest.raises(ValueError, match=r"rrdbnet.*scale 3"):
    models.create_model("rrdbnet", 3)


def test_create_model_rejects_unknown_kwarg_and_lists_valid_ones():
  with pytest.raises(ValueError, match=r"num_feats.*num_feat") as err:
    models.create_model("edsr", 2, num_feats=8)
  assert "res_scale" in str(err.value)
  assert "parent" not in str(err.value)


def test_create_model_rejects_unknown_model_and_scale():
  with pytest.raises(ValueError, match="unknown_net"):
    models.create_model("unknown_net", 4)
  with pytest.raises(ValueError, match=r"msrresnet.*8.*\(2, 3, 4\)"):
    models.create_model("msrresnet", 8)


def test_create_model_passes_options_through():
  model = models.create_model("edsr", 3, dtype=jnp.bfloat16, res_scale=0.1, num_block=4)
  assert (model.scale, model.dtype, model.res_scale, model.num_block) == (
      3, jnp.bfloat16, 0.1, 4)


# ---------------------------------------------------------------- ops


def _pixel_shuffle_reference(x, r):
  """Loops over the PyTorch formula out[n, h*r+i, w*r+j, c] = in[n, h, w, c*r*r+i*r+j]."""
  b, h, w, crr = x.shape
  c = crr // (r * r)
  out = np.zeros((b, h * r, w * r, c), x.dtype)
  for hh, ww, cc, i, j in np.ndindex(h, w, c, r, r):
    out[:, hh * r + i, ww * r + j, cc] = x[:, hh, ww, cc * r * r + i * r + j]
  return out


@pytest.mark.exact("pixel (un)shuffle only moves values")
@pytest.mark.parametrize("r", [2, 3])
def test_pixel_shuffle_matches_pytorch_formula_and_roundtrips(r):
  x = np.random.default_rng(r).normal(size=(2, 3, 4, 2 * r * r)).astype(np.float32)
  y = layers.pixel_shuffle(jnp.asarray(x), r)
  np.testing.assert_array_equal(y, _pixel_shuffle_reference(x, r))  # Data movement: exact.
  np.testing.assert_array_equal(layers.pixel_unshuffle(y, r), x)
  z = _rand((2, 3 * r, 2 * r, 5))
  np.testing.assert_array_equal(layers.pixel_shuffle(layers.pixel_unshuffle(z, r), r), z)


def _bilinear_torch_reference(x, s):
  """F.interpolate(bilinear, align_corners=False, scale_factor=s) on [B, H, W, C]."""
  def along(a, axis):
    n = a.shape[axis]
    src = np.maximum((np.arange(n * s) + 0.5) / s - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(int), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    lam = (src - i0).reshape([-1 if d == axis else 1 for d in range(a.ndim)])
    return (1 - lam) * np.take(a, i0, axis) + lam * np.take(a, i1, axis)
  return along(along(x, 1), 2)


def test_bilinear_hand_checked_case():
  x = jnp.asarray([0.0, 1.0]).reshape(1, 1, 2, 1)
  y = layers.upsample_bilinear(x, 2)
  # Rows are constant; along W the sources are -0.25 (clamped to 0), 0.25, 0.75, 1.25 (-> 1).
  utils.assert_close(y[0, :, :, 0], [[0, 0.25, 0.75, 1]] * 2, ops=4)


@pytest.mark.numerics
@pytest.mark.parametrize("s", [2, 3, 4])
def test_bilinear_matches_pytorch_formula(s):
  x = np.random.default_rng(s).uniform(size=(2, 5, 7, 3))
  y = layers.upsample_bilinear(jnp.asarray(x, jnp.float32), s)
  # float32 against float64: two taps per axis, plus the input's rounding to float32.
  utils.assert_close(y, _bilinear_torch_reference(x, s), ops=5, magnitude=1.0)


@pytest.mark.exact("nearest upsampling copies pixels")
def test_upsample_nearest_repeats_pixels():
  x = _rand((1, 3, 4, 2))
  y = np.asarray(layers.upsample_nearest(x, 2))
  assert y.shape == (1, 6, 8, 2)
  for i, j in np.ndindex(2, 2):
    np.testing.assert_array_equal(y[:, i::2, j::2], x)


@pytest.mark.numerics
def test_conv2d_with_transposed_torch_weight_matches_torch_conv():
  """A torch-layout weight, transposed by the import rule, gives torch's Conv2d(pad=1)."""
  rng = np.random.default_rng(0)
  x_nchw = rng.normal(size=(1, 2, 5, 6))
  w_oihw = rng.normal(size=(4, 2, 3, 3))
  bias = rng.normal(size=(4,))
  padded = np.pad(x_nchw, ((0, 0), (0, 0), (1, 1), (1, 1)))
  expected = np.zeros((1, 4, 5, 6))
  for o, h, w in np.ndindex(4, 5, 6):  # Cross-correlation, as torch computes it.
    expected[0, o, h, w] = np.sum(padded[0, :, h:h + 3, w:w + 3] * w_oihw[o]) + bias[o]
  params = {"kernel": jnp.asarray(layers.torch_conv_weight_to_flax(w_oihw), jnp.float32),
            "bias": jnp.asarray(bias, jnp.float32)}
  x_nhwc = jnp.asarray(x_nchw.transpose(0, 2, 3, 1), jnp.float32)
  y = layers.Conv2d(4).apply({"params": params}, x_nhwc)
  # float32 against float64: 3x3 taps x 2 channels plus the bias.
  utils.assert_close(y, expected.transpose(0, 2, 3, 1), ops=19)


# ---------------------------------------------------------------- BasicSR names


def _basicsr_keys(name, num_block, scale):
  """BasicSR state-dict keys, written from the BasicSR arch files (small configs)."""
  convs = {
      "msrresnet": ["conv_first"] + [f"body.{i}.conv{k}" for i in range(num_block)
                                     for k in (1, 2)]
                   + ["upconv1", "upconv2"][:2 if scale == 4 else 1] + ["conv_hr", "conv_last"],
      "edsr": ["conv_first"] + [f"body.{i}.conv{k}" for i in range(num_block) for k in (1, 2)]
              + ["conv_after_body"]
              + [f"upsample.{2 * k}" for k in range(1 if scale == 3 else int(math.log2(scale)))]
              + ["conv_last"],
      "rrdbnet": ["conv_first"] + [f"body.{i}.rdb{j}.conv{k}" for i in range(num_block)
                                   for j in (1, 2, 3) for k in range(1, 6)]
                 + ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"],
  }[name]
  return [f"{conv}.{leaf}" for conv in convs for leaf in ("weight", "bias")]


@pytest.mark.parametrize("name,scale", [
    ("msrresnet", 4), ("msrresnet", 3), ("edsr", 8), ("edsr", 3), ("rrdbnet", 2)])
def test_param_tree_follows_basicsr_names(name, scale):
  model = models.create_model(name, scale, num_feat=8, num_block=2)
  params = jax.eval_shape(model.init, _key(), jnp.zeros((1, 8, 8, 3)))["params"]
  flax_paths = {tuple(k.key for k in path)
                for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]}
  mapped = {layers.flax_param_path(key) for key in _basicsr_keys(name, 2, scale)}
  assert mapped == flax_paths


def test_flax_param_path_examples():
  assert layers.flax_param_path("body.0.conv1.weight") == ("body_0", "conv1", "kernel")
  assert layers.flax_param_path("body.12.rdb3.conv5.bias") == ("body_12", "rdb3", "conv5", "bias")
  assert layers.flax_param_path("conv_up1.weight") == ("conv_up1", "kernel")


# ---------------------------------------------------------------- init


def test_conv2d_kaiming_init_matches_basicsr_default_init_weights():
  """init_scale=0.1: kaiming normal (fan_in, gain sqrt 2, untruncated) * 0.1, zero bias."""
  params = layers.Conv2d(256, init_scale=0.1).init(_key(), jnp.zeros((1, 1, 1, 64)))["params"]
  kernel = np.asarray(params["kernel"])  # 147k samples, fan_in 64 * 9.
  np.testing.assert_allclose(kernel.std(), 0.1 * math.sqrt(2 / (64 * 9)), rtol=0.02)
  assert np.abs(kernel).max() > 4 * kernel.std()  # Not truncated at 2 std.
  np.testing.assert_array_equal(params["bias"], 0)


def test_conv2d_default_init_matches_pytorch():
  """init_scale=None: kernel and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  params = layers.Conv2d(256).init(_key(), jnp.zeros((1, 1, 1, 64)))["params"]
  bound = 1 / math.sqrt(64 * 9)
  kernel, bias = np.asarray(params["kernel"]), np.asarray(params["bias"])
  assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
  np.testing.assert_allclose(kernel.std(), bound / math.sqrt(3), rtol=0.02)
  np.testing.assert_allclose(np.abs(bias).max(), bound, rtol=0.1)


def _init_kinds(name):
  """{conv path: 'basicsr' | 'pytorch'} read off the kernel std (4x apart) and bias."""
  params = _small(name)[1]["params"]
  kinds = {}
  for path, kernel in jax.tree_util.tree_flatten_with_path(params)[0]:
    if path[-1].key != "kernel":
      continue
    conv = params
    for k in path[:-1]:
      conv = conv[k.key]
    normalised_std = float(np.std(kernel)) * math.sqrt(math.prod(kernel.shape[:3]))
    if 0.1 < normalised_std < 0.2 and not np.any(conv["bias"]):  # 0.1 * sqrt(2) = 0.141
      kinds["/".join(k.key for k in path[:-1])] = "basicsr"
    elif 0.45 < normalised_std < 0.7 and np.any(conv["bias"]):  # 1 / sqrt(3) = 0.577
      kinds["/".join(k.key for k in path[:-1])] = "pytorch"
  return kinds


def test_each_conv_is_initialised_as_in_basicsr():
  assert set(_init_kinds("msrresnet").values()) == {"basicsr"}
  assert len(_init_kinds("msrresnet")) == 9
  assert set(_init_kinds("edsr").values()) == {"pytorch"}
  assert len(_init_kinds("edsr")) == 9
  rrdb = _init_kinds("rrdbnet")
  assert len(rrdb) == 15 + 6
  for path, kind in rrdb.items():
    assert kind == ("basicsr" if "/rdb" in path else "pytorch"), path


# ---------------------------------------------------------------- model-specific behaviour


def _zero(tree):
  return jax.tree_util.tree_map(jnp.zeros_like, tree)


@pytest.mark.numerics
def test_msrresnet_skip_is_bilinear_upsample():
  model, variables = _small("msrresnet")
  params = dict(variables["params"], conv_last=_zero(variables["params"]["conv_last"]))
  y = model.apply({"params": params}, X)
  utils.assert_close(y, _bilinear_torch_reference(np.asarray(X), 4), ops=5, magnitude=1.0)


def test_edsr_adds_rgb_mean_to_output():
  model, variables = _small("edsr")
  params = dict(variables["params"], conv_last=_zero(variables["params"]["conv_last"]))
  y = model.apply({"params": params}, X)
  # The mean's rounding to float32 plus an exact zero.
  utils.assert_close(y, np.broadcast_to(model.rgb_mean, y.shape), ops=1)


def test_edsr_subtracts_rgb_mean_from_input():
  """With zero biases, an input equal to rgb_mean is all-zero inside, so out == rgb_mean."""
  model, variables = _small("edsr")
  no_bias = jax.tree_util.tree_map_with_path(
      lambda path, p: jnp.zeros_like(p) if path[-1].key == "bias" else p, variables)
  mean_image = jnp.broadcast_to(jnp.asarray(model.rgb_mean), X.shape)
  y = model.apply(no_bias, mean_image)
  utils.assert_close(y, np.broadcast_to(model.rgb_mean, y.shape), ops=1)
  y_other = model.apply(no_bias, mean_image + 0.1)
  assert np.abs(y_other - y).max() > 1e-3


@pytest.mark.numerics
def test_edsr_res_scale_scales_the_residual_branch():
  model, variables = _small("edsr")
  params = dict(variables["params"])
  for i in range(model.num_block):
    block = params[f"body_{i}"]
    params[f"body_{i}"] = dict(block, conv2=jax.tree_util.tree_map(lambda p: 2 * p,
                                                                   block["conv2"]))
  halved = models.create_model("edsr", 4, res_scale=0.5, **SMALL["edsr"])
  utils.assert_close(halved.apply({"params": params}, X), model.apply(variables, X),
                     ops=utils.network_ops(variables))


@pytest.mark.numerics
def test_rrdbnet_scale2_is_scale4_trunk_on_unshuffled_input():
  model_x2, variables = _small("rrdbnet", 2)
  assert variables["params"]["conv_first"]["kernel"].shape[2] == 12
  model_x4 = models.create_model("rrdbnet", 4, num_in_ch=12, **SMALL["rrdbnet"])
  utils.assert_close(model_x2.apply(variables, X),
                     model_x4.apply(variables, layers.pixel_unshuffle(X, 2)),
                     ops=utils.network_ops(variables))


@pytest.mark.numerics
def test_bicubic_is_imresize_without_params():
  model = models.create_model("bicubic", 3)
  x = _rand((2, 5, 4, 3))
  variables = model.init(_key(), x)
  assert models.count_params(variables) == 0
  y = model.apply(variables, x)
  assert y.shape == (2, 15, 12, 3) and y.dtype == jnp.float32
  # Two passes of 4 + 2 taps, in another program (the model's).
  utils.assert_close(y, np.asarray(imresize_ops.imresize(x, 3)), ops=12, magnitude=1.0)
