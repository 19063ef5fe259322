"""SRVGGNetCompact (Real-ESRGAN `realesrgan/archs/srvgg_arch.py`), the compact model of
`realesr-general-x4v3` and `realesr-animevideov3`.

Submodules (BasicSR names of the `body` ModuleList): body_0 (conv), body_1 (activation),
body_2 (conv), ..., body_{2*num_conv+1} (activation), body_{2*num_conv+2} (last conv). PReLU
activations hold their per-channel slope as `kernel` `[num_feat]`, so that `body.<i>.weight`
maps by `layers.flax_param_path` (1-D: copied, not transposed); ReLU and LeakyReLU have none.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models import layers

ACT_TYPES = ("prelu", "relu", "leakyrelu")


class PReLU(nn.Module):
  """PyTorch `nn.PReLU(num_parameters=C)`: x if x >= 0 else slope[c] * x, on `[..., C]`.

  Attributes:
    param_dtype: dtype of the slope parameter `kernel` `[C]` (init 0.25, as PyTorch).
  """
  param_dtype: layers.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    slope = self.param("kernel", nn.initializers.constant(0.25), (x.shape[-1],),
                       self.param_dtype)
    return jnp.where(x >= 0, x, slope.astype(x.dtype) * x)


class SRVGGNetCompact(layers.SRModel):
  """VGG-style body at LR resolution, one pixel-shuffle, plus the nearest-upsampled input.

  (3, 64 feat, 32 conv, prelu) x4 (`realesr-general-x4v3`) has 1,213,296 parameters.

  Attributes:
    scale: upscale factor (Real-ESRGAN's `upscale`), one of `SUPPORTED_SCALES`.
    num_in_ch: input channels.
    num_out_ch: output channels (must equal `num_in_ch` for the skip).
    num_feat: feature channels.
    num_conv: convolutions in the body (besides the first and the last).
    act_type: 'prelu' | 'relu' | 'leakyrelu' (slope 0.1); ValueError at construction otherwise.
    dtype: computation dtype; the output is float32.
    param_dtype: parameter dtype.
  """
  SUPPORTED_SCALES = (1, 2, 3, 4, 8)

  num_in_ch: int = 3
  num_out_ch: int = 3
  num_feat: int = 64
  num_conv: int = 16
  act_type: str = "prelu"

  def __post_init__(self):
    if self.act_type not in ACT_TYPES:
      raise ValueError(f"SRVGGNetCompact act_type must be one of {ACT_TYPES}, got "
                       f"{self.act_type!r}")
    super().__post_init__()

  def _activation(self, x: jax.Array, index: int) -> jax.Array:
    if self.act_type == "prelu":
      return PReLU(param_dtype=self.param_dtype, name=f"body_{index}")(x)
    if self.act_type == "leakyrelu":
      return layers.lrelu(x, 0.1)
    return nn.relu(x)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Super-resolves `x`.

    Args:
      x: `[B, H, W, num_in_ch]` in [0, 1].
      train: unused (no BatchNorm); kept for a uniform model signature.

    Returns:
      `[B, H*scale, W*scale, num_out_ch]` float32, not clipped.
    """
    del train
    feat = x
    for i in range(self.num_conv + 1):  # PyTorch's default init, as Real-ESRGAN.
      feat = self._activation(self.conv(self.num_feat, f"body_{2 * i}")(feat), 2 * i + 1)
    last = f"body_{2 * self.num_conv + 2}"
    out = layers.pixel_shuffle(self.conv(self.num_out_ch * self.scale**2, last)(feat),
                               self.scale)
    return out.astype(jnp.float32) + layers.upsample_nearest(x.astype(jnp.float32), self.scale)
