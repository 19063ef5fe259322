"""GAN discriminators (NHWC, Flax Linen): BasicSR's VGG-style and U-Net SN ones, and the seed's.

Every discriminator maps `[B, H, W, C]` in [0, 1] to float32 logits and is called as
`model.apply(variables, x, train=...)`. Its non-parameter state (BatchNorm running averages,
spectral-norm vectors u, v) lives in the collection 'batch_stats': with `train=True` pass
`mutable=['batch_stats']` (BatchNorm uses batch statistics and updates its running averages;
spectral norm does one power iteration and stores the new u and v); with `train=False` nothing
changes (running averages; sigma = u^T W v from the stored u and v, as torch's eval mode).

Weight import from BasicSR follows `layers` (submodule = BasicSR attribute name, conv weights
transposed by `torch_conv_weight_to_flax`), plus: linear `weight` -> `kernel` transposed
(`.T`); BatchNorm `weight`/`bias` -> params `scale`/`bias`, `running_mean`/`running_var` ->
batch_stats `mean`/`var`; spectral-norm `weight_orig` -> params `kernel`, `weight_u` ->
batch_stats `u`, `weight_v` -> batch_stats `v` (its `[in*k*k]` entries reordered to this
module's `[k*k*in]` columns, `spectral_norm_v_to_flax`).
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.models import layers

Dtype = Any

SN_EPS = 1e-12  # torch.nn.utils.spectral_norm default.
_lrelu = layers.lrelu


def _l2_normalize(x: jax.Array, eps: float = SN_EPS) -> jax.Array:
  """torch `F.normalize(x, dim=0, eps)`: x / max(||x||, eps) for a vector x."""
  return x / jnp.maximum(jnp.linalg.norm(x), eps)


def spectral_normalize(kernel: jax.Array, u: jax.Array, update: bool, eps: float = SN_EPS,
                       v: Optional[jax.Array] = None
                       ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """One step of torch `nn.utils.spectral_norm` (n_power_iterations=1).

  W is the kernel as a matrix `[out, k*k*in]` (PyTorch's `[out, in*k*k]` up to a permutation of
  columns, which changes neither u nor sigma). With `update` (torch's training mode):
  v = normalize(W^T u), then u = normalize(W v). Without (eval mode): the stored v, or
  normalize(W^T u) when v is None. u and v are constants for autodiff; sigma = u . (W v).

  Args:
    kernel: `[k, k, in, out]`.
    u: `[out]`, unit norm (estimate of W's leading left singular vector).
    update: whether to do the power-iteration step (training).
    eps: normalisation epsilon.
    v: `[k*k*in]`, the stored right vector (used only without `update`).

  Returns:
    (kernel / sigma, u `[out]`, v `[k*k*in]`, sigma scalar), computed in at least float32;
    the kernel is returned in its own dtype.
  """
  compute_dtype = jnp.promote_types(kernel.dtype, jnp.float32)
  w = kernel.reshape(-1, kernel.shape[-1]).T.astype(compute_dtype)
  u = jax.lax.stop_gradient(u.astype(compute_dtype))
  if update or v is None:
    v = _l2_normalize(w.T @ u, eps)
  v = jax.lax.stop_gradient(v.astype(compute_dtype))
  if update:
    u = jax.lax.stop_gradient(_l2_normalize(w @ v, eps))
  sigma = u @ (w @ v)
  return (kernel / sigma).astype(kernel.dtype), u, v, sigma


def spectral_norm_v_to_flax(v: np.ndarray, weight_shape: tuple) -> np.ndarray:
  """torch's `weight_v` `[in*kh*kw]` (columns of `weight.reshape(out, -1)`) -> `[kh*kw*in]`
  (columns of `kernel.reshape(-1, out).T`) for a conv weight `[out, in, kh, kw]`; as is for a
  linear weight or a v of another size."""
  if len(weight_shape) != 4 or v.size != np.prod(weight_shape[1:]):
    return v
  return v.reshape(weight_shape[1:]).transpose(1, 2, 0).reshape(-1)


class SpectralNormConv2d(layers.Conv2d):
  """`layers.Conv2d` whose kernel is divided by its spectral norm (torch `spectral_norm`).

  Parameters are those of `Conv2d` (`kernel` keeps its plain name); batch_stats holds u
  `[features]` (init: a normalised normal draw from the 'params' rng) and v `[k*k*in]` (init:
  normalize(W^T u), where torch draws it at random: a fresh module's eval mode then gives
  sigma = ||W^T u|| rather than an arbitrary value; training overwrites v before using it).

  Attributes:
    update: do one power iteration and store u and v (training); False uses the stored u, v.
  """
  update: bool = False

  def transform_kernel(self, kernel: jax.Array) -> jax.Array:
    u = self.variable("batch_stats", "u", lambda: _l2_normalize(
        jax.random.normal(self.make_rng("params"), (self.features,), jnp.float32)))
    v = self.variable("batch_stats", "v", lambda: spectral_normalize(
        kernel, u.value, False)[2].astype(jnp.float32))
    kernel, new_u, new_v, _ = spectral_normalize(kernel, u.value, self.update, v=v.value)
    if self.update and not self.is_initializing():
      u.value = new_u.astype(u.value.dtype)
      v.value = new_v.astype(v.value.dtype)
    return kernel


def _check_input(model: nn.Module, x: jax.Array, num_in_ch: int,
                 input_size: Optional[int] = None) -> None:
  """ValueError unless x is `[B, H, W, num_in_ch]` (with H = W = input_size when given)."""
  name = type(model).__name__
  if x.ndim != 4 or x.shape[-1] != num_in_ch:
    raise ValueError(f"{name} expects [B, H, W, {num_in_ch}] input, got {x.shape}")
  if input_size is not None and x.shape[1:3] != (input_size, input_size):
    raise ValueError(f"{name} built for {input_size}x{input_size} inputs, got "
                     f"{x.shape[1]}x{x.shape[2]}")


def _flatten_nchw(x: jax.Array) -> jax.Array:
  """`[B, H, W, C]` -> `[B, C*H*W]` in PyTorch's NCHW `view(B, -1)` order."""
  return x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)


class Discriminator(layers.LayerFactory):
  """Base of the discriminators: computation and parameter dtypes (logits are float32).

  Attributes:
    dtype: computation dtype.
    param_dtype: parameter dtype.
  """
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32


class VGGStyleDiscriminator(Discriminator):
  """BasicSR `VGGStyleDiscriminator` (SRGAN / ESRGAN), `[B, S, S, C]` -> `[B, 1]` logits.

  Submodules: conv0_0 (3x3, bias), conv0_1 + bn0_1, conv{i}_0 + bn{i}_0 (3x3) and
  conv{i}_1 + bn{i}_1 (4x4 stride 2) for i = 1..4 (and 5 when input_size is 256), all without
  bias, channels min(num_feat * 2^i, num_feat * 8); linear1 (-> 100), linear2 (-> 1).
  (3, 64, 128) has 14,499,401 parameters.

  Attributes:
    num_in_ch: input channels C.
    num_feat: base feature channels.
    input_size: S, 128 or 256 (ValueError at construction otherwise).
  """
  num_in_ch: int = 3
  num_feat: int = 64
  input_size: int = 128

  def __post_init__(self):
    if self.input_size not in (128, 256):
      raise ValueError(f"VGGStyleDiscriminator input_size must be 128 or 256, got "
                       f"{self.input_size}")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    """Logits `[B, 1]` float32 for x `[B, input_size, input_size, num_in_ch]` in [0, 1]."""
    _check_input(self, x, self.num_in_ch, self.input_size)

    def conv_bn(feat, features, suffix, **kwargs):
      feat = self.conv(features, f"conv{suffix}", use_bias=False, **kwargs)(feat)
      return _lrelu(self.batch_norm(f"bn{suffix}", train)(feat))

    feat = _lrelu(self.conv(self.num_feat, "conv0_0")(x))
    for i in range(6 if self.input_size == 256 else 5):
      features = self.num_feat * min(2**i, 8)
      if i > 0:
        feat = conv_bn(feat, features, f"{i}_0")
      feat = conv_bn(feat, features, f"{i}_1", kernel_size=4, stride=2)
    feat = _flatten_nchw(feat)  # spatial 4x4
    feat = _lrelu(self.dense(100, feat.shape[-1], "linear1")(feat))
    return self.dense(1, 100, "linear2")(feat).astype(jnp.float32)


class UNetDiscriminatorSN(Discriminator):
  """Real-ESRGAN's `UNetDiscriminatorSN`: per-pixel logits `[B, H, W, 1]`.

  conv0 (3x3, bias); conv1..conv3 (4x4 stride 2) down, bilinear x2 + conv4..conv6 (3x3) up with
  skip additions of x2, x1, x0; conv7, conv8 (3x3); conv9 (3x3, bias) -> 1 channel. conv1..conv8
  are spectral-normalised without bias. (3, 64) has 4,376,897 parameters.

  Attributes:
    num_in_ch: input channels.
    num_feat: base feature channels.
    skip_connection: whether to add the U-Net skips.
  """
  num_in_ch: int = 3
  num_feat: int = 64
  skip_connection: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    """Logits `[B, H, W, 1]` float32 for x `[B, H, W, num_in_ch]` in [0, 1], H, W % 8 == 0."""
    _check_input(self, x, self.num_in_ch)
    if x.shape[1] % 8 or x.shape[2] % 8:
      raise ValueError(f"UNetDiscriminatorSN needs H and W divisible by 8, got "
                       f"{x.shape[1]}x{x.shape[2]}")

    def sn_conv(features, name, **kwargs):
      return SpectralNormConv2d(features, dtype=self.dtype, param_dtype=self.param_dtype,
                                use_bias=False, update=train, name=name, **kwargs)

    nf = self.num_feat
    x0 = _lrelu(self.conv(nf, "conv0")(x))
    x1 = _lrelu(sn_conv(nf * 2, "conv1", kernel_size=4, stride=2)(x0))
    x2 = _lrelu(sn_conv(nf * 4, "conv2", kernel_size=4, stride=2)(x1))
    feat = _lrelu(sn_conv(nf * 8, "conv3", kernel_size=4, stride=2)(x2))
    for name, features, skip in (("conv4", nf * 4, x2), ("conv5", nf * 2, x1),
                                 ("conv6", nf, x0)):
      feat = _lrelu(sn_conv(features, name)(layers.upsample_bilinear(feat, 2)))
      if self.skip_connection:
        feat = feat + skip
    feat = _lrelu(sn_conv(nf, "conv7")(feat))
    feat = _lrelu(sn_conv(nf, "conv8")(feat))
    return self.conv(1, "conv9")(feat).astype(jnp.float32)


class SeedDiscriminator(Discriminator):
  """The project seed's discriminator: `[B, S, S, C]` -> `[B, 1]` logits.

  conv0 (3x3, bias) + LeakyReLU(0.2); conv1..conv{num_down} (4x4 stride 2, no bias) each with
  bn1..bn{num_down} + LeakyReLU(0.2), channels min(num_feat * 2^i, num_feat * 8) (128, 256,
  512, 512 by default); flatten (NCHW order); linear -> 1.

  Attributes:
    num_in_ch: input channels C.
    num_feat: base feature channels.
    num_down: stride-2 convs.
    input_size: S, divisible by 2**num_down (ValueError at construction otherwise).
  """
  num_in_ch: int = 3
  num_feat: int = 64
  num_down: int = 4
  input_size: int = 128

  def __post_init__(self):
    if self.num_down < 0 or self.input_size <= 0 or self.input_size % 2**self.num_down:
      raise ValueError(f"SeedDiscriminator input_size {self.input_size} must be a positive "
                       f"multiple of 2**num_down = {2**max(self.num_down, 0)}")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    """Logits `[B, 1]` float32 for x `[B, input_size, input_size, num_in_ch]` in [0, 1]."""
    _check_input(self, x, self.num_in_ch, self.input_size)
    feat = _lrelu(self.conv(self.num_feat, "conv0")(x))
    for i in range(1, self.num_down + 1):
      feat = self.conv(self.num_feat * min(2**i, 8), f"conv{i}", kernel_size=4, stride=2,
                       use_bias=False)(feat)
      feat = _lrelu(self.batch_norm(f"bn{i}", train)(feat))
    feat = _flatten_nchw(feat)
    return self.dense(1, feat.shape[-1], "linear")(feat).astype(jnp.float32)
