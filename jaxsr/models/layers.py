"""Building blocks shared by the BasicSR-compatible models (NHWC, Flax Linen).

Naming rule for importing BasicSR (PyTorch) weights: every Linen submodule carries the
BasicSR attribute name, and an `nn.Sequential` entry `<name>.<index>` becomes the Linen
submodule `<name>_<index>`. A parameter `weight` becomes `kernel`, transposed from the
PyTorch layout `[out, in, kh, kw]` to the Flax layout `[kh, kw, in, out]`; `bias` keeps
its name and value. Examples:

  body.0.conv1.weight        -> params['body_0']['conv1']['kernel']  (transposed)
  body.3.rdb2.conv5.bias     -> params['body_3']['rdb2']['conv5']['bias']
  upsample.2.weight          -> params['upsample_2']['kernel']        (transposed)

`flax_param_path` and `torch_conv_weight_to_flax` implement that rule.
"""

import math
import re
from typing import Any, Callable, ClassVar, Optional, Sequence

import flax.linen as nn
from flax.linen import dtypes as flax_dtypes
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.ops import conv as conv_ops

Dtype = Any

_SEQUENTIAL_ENTRY = re.compile(r"(^|\.)([A-Za-z_]\w*)\.(\d+)(?=\.|$)")


def flax_param_path(torch_key: str) -> tuple[str, ...]:
  """Maps a BasicSR state-dict key to its path in the Flax `params` tree.

  Args:
    torch_key: e.g. 'body.0.rdb1.conv1.weight'.

  Returns:
    e.g. ('body_0', 'rdb1', 'conv1', 'kernel').
  """
  joined = _SEQUENTIAL_ENTRY.sub(r"\1\2_\3", torch_key)
  *modules, leaf = joined.split(".")
  return (*modules, "kernel" if leaf == "weight" else leaf)


def torch_conv_weight_to_flax(weight: np.ndarray) -> np.ndarray:
  """Transposes a PyTorch conv weight `[out, in, kh, kw]` to Flax `[kh, kw, in, out]`."""
  return np.transpose(np.asarray(weight), (2, 3, 1, 0))


def count_params(params) -> int:
  """Number of scalars in a parameter tree (arrays or `jax.ShapeDtypeStruct`s)."""
  return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params))


def check_scale(model_name: str, scale: int, supported: Sequence[int]) -> None:
  """Raises ValueError if `scale` is not one of `supported`."""
  if scale not in supported:
    raise ValueError(
        f"{model_name} does not support scale {scale}; supported scales: "
        f"{tuple(supported)}")


def kaiming_normal_init(scale: float = 1.0) -> jax.nn.initializers.Initializer:
  """BasicSR `default_init_weights`: kaiming normal (fan_in, gain sqrt 2) times `scale`."""
  return nn.initializers.variance_scaling(2.0 * scale**2, "fan_in", "normal")


def torch_default_bias_init(fan_in: int) -> jax.nn.initializers.Initializer:
  """PyTorch `nn.Conv2d` / `nn.Linear` bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


# PyTorch `nn.Conv2d` / `nn.Linear` kernel init: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)).
torch_default_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

def lrelu(x: jax.Array, negative_slope: float = 0.2) -> jax.Array:
  """LeakyReLU, by default with the 0.2 slope of ESRGAN's RRDB, the GAN discriminators and
  the seed's networks."""
  return nn.leaky_relu(x, negative_slope=negative_slope)


# Per-channel RGB mean of DIV2K in [0, 1], subtracted from inputs by EDSR and SwinIR.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)

# PyTorch `nn.BatchNorm2d` defaults (its momentum 0.1 weights the new batch statistic).
TORCH_BN_MOMENTUM = 0.9
TORCH_BN_EPS = 1e-5


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1,
           padding: Optional[int] = None) -> jax.Array:
  """PyTorch `F.conv2d(x, w, stride=stride, padding=padding)` (zero padding, no bias) in NHWC.

  Stride-1 'same' convolutions (odd k, padding k // 2) go to `conv_ops.conv2d_same` (fast CPU
  gradients); the others (e.g. 4x4 stride 2 padding 1, which halves even sizes) to XLA.

  Args:
    x: `[B, H, W, in]`.
    kernel: `[k, k, in, out]` (Flax layout; `torch_conv_weight_to_flax` of a PyTorch weight).
    stride: stride in both directions.
    padding: zero padding on every side; None for `(k - 1) // 2`.

  Returns:
    `[B, (H + 2 * padding - k) // stride + 1, (W + ...) // stride + 1, out]` in the promoted
    dtype of x and kernel.
  """
  k = kernel.shape[0]
  padding = (k - 1) // 2 if padding is None else padding
  if stride == 1 and k % 2 == 1 and 2 * padding == k - 1:
    return conv_ops.conv2d_same(x, kernel)
  dtype = jnp.result_type(x, kernel)
  return jax.lax.conv_general_dilated(
      x.astype(dtype), kernel.astype(dtype), window_strides=(stride, stride),
      padding=((padding, padding), (padding, padding)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


class Conv2d(nn.Module):
  """PyTorch `nn.Conv2d` with a square kernel and zero padding, initialised like BasicSR.

  The default is a stride-1 'same' convolution with bias. Parameters are `kernel`
  `[k, k, in, out]` and (if `use_bias`) `bias` `[out]`, as in `flax.linen.Conv`.

  Attributes:
    features: output channels.
    kernel_size: square kernel size k.
    init_scale: None for PyTorch's default Conv2d init; a float for BasicSR
      `default_init_weights(scale=init_scale)` (kaiming normal * scale, zero bias).
    dtype: computation dtype.
    param_dtype: parameter dtype.
    stride: stride in both directions.
    padding: zero padding on every side; None for `(k - 1) // 2` ('same' for odd k at
      stride 1, PyTorch padding=1 for 3x3; 1 for the 4x4 stride-2 convs that halve the size).
    use_bias: whether there is a `bias` parameter.
  """
  features: int
  kernel_size: int = 3
  init_scale: Optional[float] = None
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  stride: int = 1
  padding: Optional[int] = None
  use_bias: bool = True

  def transform_kernel(self, kernel: jax.Array) -> jax.Array:
    """Hook for subclasses (e.g. spectral norm): the kernel actually used. Identity here."""
    return kernel

  @nn.compact
  def __call__(self, x: jax.Array | Sequence[jax.Array]) -> jax.Array:
    """`[B, H, W, in]` -> `[B, H', W', features]` in `dtype` (H' = H at stride 1, 'same').

    `x` may also be a list or tuple of parts `[B, H, W, in_i]` that stand for their
    concatenation along channels (in = sum in_i; the kernel is the same): a dense block's
    input. Stride-1 'same' convolutions then skip the concatenation on CPU
    (`conv_ops.conv2d_same_concat`).
    """
    parts = tuple(x) if isinstance(x, (list, tuple)) else (x,)
    in_features = sum(part.shape[-1] for part in parts)
    k = self.kernel_size
    fan_in = k * k * in_features
    if self.init_scale is None:
      kernel_init, bias_init = torch_default_kernel_init, torch_default_bias_init(fan_in)
    else:
      kernel_init, bias_init = kaiming_normal_init(self.init_scale), nn.initializers.zeros
    kernel = self.param("kernel", kernel_init, (k, k, in_features, self.features),
                        self.param_dtype)
    kernel = self.transform_kernel(kernel)
    bias = (self.param("bias", bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    *parts, kernel, bias = flax_dtypes.promote_dtype(*parts, kernel, bias, dtype=self.dtype)
    if len(parts) == 1:
      y = conv2d(parts[0], kernel, self.stride, self.padding)
    elif self.stride == 1 and k % 2 == 1 and self.padding in (None, (k - 1) // 2):
      y = conv_ops.conv2d_same_concat(parts, kernel)
    else:
      y = conv2d(jnp.concatenate(parts, -1), kernel, self.stride, self.padding)
    return y if bias is None else y + bias


class DepthwiseConv2d(nn.Module):
  """torch `nn.Conv2d(C, C, 3, padding=1, groups=C)` (`conv_ops.depthwise_conv2d_same`):
  kernel `[3, 3, 1, C]` (the Flax layout of torch's `[C, 1, 3, 3]`), optional bias `[C]`,
  torch's default init. `[B, H, W, C]` -> `[B, H, W, C]` in `dtype`."""
  use_bias: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    kernel = self.param("kernel", torch_default_kernel_init, (3, 3, 1, c), self.param_dtype)
    y = conv_ops.depthwise_conv2d_same(x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      y = y + self.param("bias", torch_default_bias_init(9), (c,),
                         self.param_dtype).astype(self.dtype)
    return y


class LayerFactory(nn.Module):
  """Base of modules that declare `dtype` and `param_dtype` fields (the subclasses declare
  them, so that each keeps its own field order): named layers in those dtypes, to be called
  from a compact `__call__`."""

  def conv(self, features: int, name: str, init_scale: Optional[float] = None,
           **kwargs) -> Conv2d:
    """A named `Conv2d` (3x3 'same' with bias unless `kwargs` set kernel_size, stride,
    padding or use_bias)."""
    return Conv2d(features, init_scale=init_scale, dtype=self.dtype,
                  param_dtype=self.param_dtype, name=name, **kwargs)

  def batch_norm(self, name: str, train: bool) -> nn.BatchNorm:
    """PyTorch-like `nn.BatchNorm2d` (affine, momentum 0.1, eps 1e-5) over the last axis.

    With `train`, it normalises with the batch statistics and updates the running averages
    in 'batch_stats' (apply with `mutable=['batch_stats']`); else it uses the running ones.
    Flax names: `scale`, `bias` (params); `mean`, `var` (batch_stats). Unlike PyTorch, the
    running variance averages the biased batch variance.
    """
    return nn.BatchNorm(use_running_average=not train, momentum=TORCH_BN_MOMENTUM,
                        epsilon=TORCH_BN_EPS, dtype=self.dtype, param_dtype=self.param_dtype,
                        name=name)

  def dense(self, features: int, in_features: int, name: str) -> nn.Dense:
    """PyTorch-initialised `nn.Linear(in_features, features)`; kernel `[in, out]` (the
    transpose of PyTorch's weight)."""
    return nn.Dense(features, dtype=self.dtype, param_dtype=self.param_dtype,
                    kernel_init=torch_default_kernel_init,
                    bias_init=torch_default_bias_init(in_features), name=name)


class SRModel(LayerFactory):
  """Base of the SR models: the fields every model has, and the scale check at construction.

  Attributes:
    scale: upscale factor, one of the subclass's `SUPPORTED_SCALES` (ValueError otherwise,
      raised when the module is built, before any tracing).
    dtype: computation dtype; models return float32.
    param_dtype: parameter dtype.
  """
  SUPPORTED_SCALES: ClassVar[tuple[int, ...]] = ()

  scale: int = 4
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    check_scale(type(self).__name__, self.scale, self.SUPPORTED_SCALES)
    super().__post_init__()


def pad_to_min_size(x: jax.Array, size: int) -> jax.Array:
  """spandrel's `pad_tensor`: `[B, H, W, C]` padded at the bottom / right to at least `size`:
  reflect (at most H - 1, W - 1), then edge for the rest.

  Each short axis of length n becomes a gather of max(n, size) rows, row i <- min(i,
  max(2n - 2 - i, 0)) (the reflection of i < 2n - 1, then the edge row 0 of the reflected
  tensor), so symbolic sizes (`jax.export`) trace too: the program pads exactly the inputs
  below `size`."""
  for axis in (1, 2):
    n = x.shape[axis]
    padded = jax.core.max_dim(n, size)
    if padded == n:  # n >= size, decided (static sizes, or symbolic ones known that large).
      continue
    i = jnp.arange(padded)
    x = jnp.take(x, jnp.minimum(i, jnp.maximum(2 * n - 2 - i, 0)), axis=axis, mode="clip")
  return x


def pixel_shuffle(x: jax.Array, r: int) -> jax.Array:
  """PyTorch `nn.PixelShuffle(r)` in NHWC.

  out[n, h*r + i, w*r + j, c] = x[n, h, w, c*r*r + i*r + j].

  Args:
    x: `[B, H, W, C*r*r]`.
    r: upscale factor.

  Returns:
    `[B, H*r, W*r, C]`.
  """
  b, h, w, crr = x.shape
  if crr % (r * r):
    raise ValueError(f"pixel_shuffle: channels {crr} not divisible by {r}*{r}")
  c = crr // (r * r)
  x = x.reshape(b, h, w, c, r, r)
  x = x.transpose(0, 1, 4, 2, 5, 3)  # [B, H, i, W, j, C]
  return x.reshape(b, h * r, w * r, c)


def pixel_unshuffle(x: jax.Array, r: int) -> jax.Array:
  """BasicSR `pixel_unshuffle(x, r)` in NHWC; the inverse of `pixel_shuffle`.

  Args:
    x: `[B, H*r, W*r, C]`.
    r: downscale factor.

  Returns:
    `[B, H, W, C*r*r]` with channel index `c*r*r + i*r + j`.
  """
  b, hr, wr, c = x.shape
  if hr % r or wr % r:
    raise ValueError(f"pixel_unshuffle: spatial size {hr}x{wr} not divisible by {r}")
  h, w = hr // r, wr // r
  x = x.reshape(b, h, r, w, r, c)
  x = x.transpose(0, 1, 3, 5, 2, 4)  # [B, H, W, C, i, j]
  return x.reshape(b, h, w, c * r * r)


def pixel_shuffle_upsample(conv: Callable[..., nn.Module], x: jax.Array, scale: int,
                           prefix: str) -> jax.Array:
  """BasicSR `Upsample`: [conv C -> 4C, PixelShuffle(2)] per factor 2 of `scale` (a power of
  2), or [conv C -> 9C, PixelShuffle(3)] for 3; the convs are named `prefix`_0, _2, ... (their
  indices in BasicSR's Sequential).

  Args:
    conv: `(features, name) -> Conv2d` (a `LayerFactory.conv`).
    x: `[B, H, W, C]`.
    scale: 2^n or 3.
    prefix: conv name prefix.

  Returns:
    `[B, H*scale, W*scale, C]`.
  """
  r = 3 if scale == 3 else 2
  for k in range(round(math.log(scale, r))):
    x = pixel_shuffle(conv(x.shape[-1] * r * r, f"{prefix}_{2 * k}")(x), r)
  return x


def upsample_bilinear(x: jax.Array, scale: int) -> jax.Array:
  """PyTorch `F.interpolate(mode='bilinear', align_corners=False)` upsampling by `scale`.

  Half-pixel centres with edge clamping; for upsampling this equals `jax.image.resize`
  'bilinear' (out-of-range taps get zero weight and the rest are renormalised).

  Args:
    x: `[B, H, W, C]`.
    scale: integer factor >= 1.

  Returns:
    `[B, H*scale, W*scale, C]`.
  """
  b, h, w, c = x.shape
  return jax.image.resize(x, (b, h * scale, w * scale, c), "bilinear", antialias=False)


def upsample_nearest(x: jax.Array, scale: int) -> jax.Array:
  """PyTorch `F.interpolate(mode='nearest')` by an integer factor: `[B, H, W, C]` ->
  `[B, H*scale, W*scale, C]`."""
  return jnp.repeat(jnp.repeat(x, scale, axis=1), scale, axis=2)


class ResidualBlockNoBN(nn.Module):
  """BasicSR `ResidualBlockNoBN`: x + res_scale * conv2(relu(conv1(x))).

  Attributes:
    num_feat: channels C of input and output `[B, H, W, C]`.
    res_scale: residual scale.
    init_scale: see `Conv2d` (BasicSR: 0.1, or None when `pytorch_init=True`).
    dtype: computation dtype.
    param_dtype: parameter dtype.
  """
  num_feat: int = 64
  res_scale: float = 1.0
  init_scale: Optional[float] = 0.1
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = lambda name: Conv2d(self.num_feat, init_scale=self.init_scale, dtype=self.dtype,
                               param_dtype=self.param_dtype, name=name)
    out = conv("conv2")(nn.relu(conv("conv1")(x)))
    return x + out * self.res_scale
