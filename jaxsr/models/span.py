"""SPAN, the Swift Parameter-free Attention Network (Wan et al., CVPRW 2024; NTIRE 2024
efficient SR winner): hongyuanyu/SPAN `basicsr/archs/span_arch.py` as spandrel 0.4.2 has it
(`spandrel/architectures/SPAN`, which adds the `norm` switch).

conv_1 -> six SPABs -> conv_2 on the last; conv_cat (1x1) of [conv_1, conv_2, block_1, block_6's
first conv after SiLU] -> one conv and PixelShuffle(scale). A SPAB is three Conv3XC with SiLU
between them and a parameter-free attention: (h + x) * (sigmoid(h) - 0.5), h the third conv's
output.

A Conv3XC is trained as two branches, a 1x1 conv `sk` plus 1x1 (c_in -> 2 c_in) -> 3x3 (no
padding, on the zero-padded input) -> 1x1 (2 c_out -> c_out) convs `conv_0..2`, and run as the
single 3x3 conv they compose to (`merge_conv3xc`, the official `update_params`). Here it holds
the branches' parameters and always applies the merged conv: the same function (training-mode
and eval-mode PyTorch outputs are equal up to rounding), with the cost of one 3x3 conv. With
`deploy=True` it holds only that conv, `eval_conv` (re-parameterised checkpoints such as the
NTIRE 2024 submission; the size the papers count).

Submodules (PyTorch names, mapped by `layers.flax_param_path`): conv_1, block_<1..6>/c<1..3>_r,
conv_2 (each `sk`, `conv_0`, `conv_1`, `conv_2` or, deployed, `eval_conv`), conv_cat,
upsampler_0. spandrel's `eval_conv` entries of training checkpoints (recomputed at each eval
forward, possibly stale in the file) and the `no_norm` buffer are not variables here
(`interop.families.span.to_jaxsr`).
"""

from typing import Any

import flax.linen as nn
from flax.linen import dtypes as flax_dtypes
import jax
import jax.numpy as jnp

from jaxsr.models import layers
from jaxsr.models import trunk

Dtype = Any
Weights = tuple[jax.Array, jax.Array]  # (kernel [k, k, in, out], bias [out]).

NUM_BLOCKS = 6
GAIN = 2  # Conv3XC's inner width: gain1=2 for every Conv3XC of SPAN.


def merge_conv3xc(sk: Weights, conv_0: Weights, conv_1: Weights, conv_2: Weights) -> Weights:
  """The 3x3 'same' conv equal to sk(x) + conv_2(conv_1(conv_0(pad(x)))), the official
  `update_params`: conv_0, conv_2 and sk are 1x1, conv_1 is 3x3 without padding, and x is
  zero-padded by 1 before conv_0 (so the border conv_1 sees is conv_0's bias, as the merged
  bias assumes). Computed in float32 at full precision.

  Args:
    sk: `[1, 1, in, out]`, `[out]`.
    conv_0: `[1, 1, in, m]`, `[m]`.
    conv_1: `[3, 3, m, n]`, `[n]`.
    conv_2: `[1, 1, n, out]`, `[out]`.

  Returns:
    kernel `[3, 3, in, out]` and bias `[out]`, float32.
  """
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  (k_sk, b_sk), (k0, b0), (k1, b1), (k2, b2) = jax.tree.map(f32, (sk, conv_0, conv_1, conv_2))
  hi = jax.lax.Precision.HIGHEST
  inner = jnp.einsum("im,hwmn->hwin", k0[0, 0], k1, precision=hi)
  kernel = jnp.einsum("hwin,no->hwio", inner, k2[0, 0], precision=hi)
  kernel = kernel + jnp.pad(k_sk, ((1, 1), (1, 1), (0, 0), (0, 0)))  # 1x1 at the centre.
  inner_bias = jnp.einsum("m,hwmn->n", b0, k1, precision=hi) + b1
  bias = jnp.dot(inner_bias, k2[0, 0], precision=hi) + b2 + b_sk
  return kernel, bias


class ConvWeights(nn.Module):
  """The `kernel` `[k, k, in, out]` and `bias` `[out]` of a PyTorch `nn.Conv2d` (its default
  init), returned rather than applied (a Conv3XC branch, merged before use).

  Attributes:
    features: output channels.
    kernel_size: square kernel size k.
    param_dtype: parameter dtype.
  """
  features: int
  kernel_size: int
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, in_features: int) -> Weights:
    k = self.kernel_size
    kernel = self.param("kernel", layers.torch_default_kernel_init,
                        (k, k, in_features, self.features), self.param_dtype)
    bias = self.param("bias", layers.torch_default_bias_init(k * k * in_features),
                      (self.features,), self.param_dtype)
    return kernel, bias


class Conv3XC(nn.Module):
  """SPAN's re-parameterisable conv: `[B, H, W, in]` -> `[B, H, W, features]` in `dtype`.

  Attributes:
    features: output channels.
    deploy: hold only the merged 3x3 conv `eval_conv` instead of the branches.
    dtype: computation dtype (the merge is float32).
    param_dtype: parameter dtype.
  """
  features: int
  deploy: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.deploy:
      return layers.Conv2d(self.features, dtype=self.dtype, param_dtype=self.param_dtype,
                           name="eval_conv")(x)
    c_in, c_out = x.shape[-1], self.features
    weights = lambda features, k, name: ConvWeights(features, k, self.param_dtype, name=name)
    kernel, bias = merge_conv3xc(weights(c_out, 1, "sk")(c_in),
                                 weights(GAIN * c_in, 1, "conv_0")(c_in),
                                 weights(GAIN * c_out, 3, "conv_1")(GAIN * c_in),
                                 weights(c_out, 1, "conv_2")(GAIN * c_out))
    x, kernel, bias = flax_dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    return layers.conv2d(x, kernel) + bias


def parameter_free_attention(h: jax.Array, x: jax.Array) -> jax.Array:
  """(h + x) * (sigmoid(h) - 0.5), the attention weight in float32 as 0.5 tanh(h / 2) (the
  same value, without sigmoid(h) - 0.5's cancellation near 0); `x.dtype` out."""
  weight = 0.5 * jnp.tanh(0.5 * h.astype(jnp.float32))
  return ((h + x).astype(jnp.float32) * weight).astype(x.dtype)


class SPAB(nn.Module):
  """Swift parameter-free attention block: `[B, H, W, C]` -> `[B, H, W, C]` in `dtype`.

  Attributes:
    features: channels C.
    deploy: see `Conv3XC`.
    return_first: also return SiLU(c1_r(x)) (SPAN reads block_6's; the official code returns
      c1_r's output, which its in-place SiLU has overwritten).
    dtype: computation dtype.
    param_dtype: parameter dtype.
  """
  features: int
  deploy: bool = False
  return_first: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array | tuple[jax.Array, jax.Array]:
    conv = lambda name: Conv3XC(self.features, self.deploy, self.dtype, self.param_dtype,
                                name=name)
    x = x.astype(self.dtype)
    # PyTorch's in-place SiLU overwrites c1_r's output: the block returns it activated.
    first = nn.silu(conv("c1_r")(x))
    h = conv("c3_r")(nn.silu(conv("c2_r")(first)))
    out = parameter_free_attention(h, x)
    return (out, first) if self.return_first else out


class SPAN(layers.SRModel):
  """SPAN; defaults: the released 48-channel model (spandrel's defaults), 426,288 parameters
  re-parameterised at x4 (`deploy=True`), 1,840,488 in training form.

  Attributes:
    scale: upscale factor (spandrel's `upscale`), one of `SUPPORTED_SCALES`.
    num_in_ch: input channels.
    num_out_ch: output channels.
    feature_channels: channels of the trunk.
    norm: map inputs to `(x - rgb_mean) * img_range` (spandrel's `norm`; the official code
      always does; False is spandrel's `no_norm` buffer, e.g. traiNNer-redux models).
    img_range: see `norm`.
    rgb_mean: per-channel mean in [0, 1] (DIV2K); one value per input channel.
    deploy: Conv3XCs hold only their merged conv (see the module docstring).
    scan_blocks: compile one SPAB and scan it over the parameters of blocks 2-5
      (`trunk.apply_blocks`; same parameters and values) instead of unrolling them.
    remat: recompute those blocks' activations in the backward pass instead of keeping them.
    dtype: computation dtype; the output is float32.
    param_dtype: parameter dtype.
  """
  SUPPORTED_SCALES = (1, 2, 3, 4, 8)

  num_in_ch: int = 3
  num_out_ch: int = 3
  feature_channels: int = 48
  norm: bool = True
  img_range: float = 255.0
  rgb_mean: tuple[float, ...] = layers.DIV2K_RGB_MEAN
  deploy: bool = False
  scan_blocks: bool = True
  remat: bool = False

  def __post_init__(self):
    if self.norm and len(self.rgb_mean) != self.num_in_ch:
      raise ValueError(f"SPAN norm=True needs one rgb_mean value per input channel: "
                       f"{len(self.rgb_mean)} values for num_in_ch={self.num_in_ch}")
    super().__post_init__()

  @property
  def input_multiple(self) -> int:
    """1: convolutions only, any size is exact."""
    return 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Super-resolves `x`.

    Args:
      x: `[B, H, W, num_in_ch]` in [0, 1], any H, W.
      train: unused (no BatchNorm or dropout); kept for a uniform model signature.

    Returns:
      `[B, H*scale, W*scale, num_out_ch]` float32, not clipped.
    """
    del train
    fc, dtypes = self.feature_channels, dict(dtype=self.dtype, param_dtype=self.param_dtype)
    x = x.astype(jnp.float32)
    if self.norm:
      x = (x - jnp.asarray(self.rgb_mean, jnp.float32)) * self.img_range
    feat = Conv3XC(fc, self.deploy, name="conv_1", **dtypes)(x)
    block = lambda i, **kw: SPAB(fc, self.deploy, name=f"block_{i}", **kw, **dtypes)
    out_b1 = block(1)(feat)
    out_b5 = trunk.apply_blocks(self, [block(i) for i in range(2, NUM_BLOCKS)], out_b1,
                                scan=self.scan_blocks, remat=self.remat)
    out_b6, first_b6 = block(NUM_BLOCKS, return_first=True)(out_b5)
    out_b6 = Conv3XC(fc, self.deploy, name="conv_2", **dtypes)(out_b6)
    out = self.conv(fc, "conv_cat", kernel_size=1)([feat, out_b6, out_b1, first_b6])
    out = self.conv(self.num_out_ch * self.scale**2, "upsampler_0")(out)
    return layers.pixel_shuffle(out, self.scale).astype(jnp.float32)
