"""The project seed's encoder-decoder generator, as its design meant it.

What the seed described: an encoder-decoder generator with strided "down-sampling"
convolutions, transposed-convolution "up-sampling" layers, a fusion with the (upsampled)
low-resolution input and a final convolution; 9x9 kernels; BatchNorm + LeakyReLU.

What was broken in its sample code: the generator was fed random noise instead of the LR
image, and its output size did not match the upscale factor.

What this module does instead: the LR image is the input. It is reflect-padded to a multiple
of 2**num_down, encoded (num_down stride-2 convs), decoded by num_down + log2(scale)
transposed convs that each double the size exactly (so the decoder ends at the padded size
times `scale`), with U-Net skip additions from the encoder at the LR sizes. The decoder output
is cropped to exactly `[H*scale, W*scale]`, concatenated with the bilinear-upsampled LR image,
and a final 9x9 conv predicts a residual on top of that upsampled image.

Submodules: conv_first (9x9), conv_down{i} + bn_down{i} (i = 1..num_down; 4x4 stride 2),
conv_up{j} + bn_up{j} (j = 1..num_down + log2(scale); transposed 4x4 stride 2), conv_last
(9x9). Transposed-conv kernels are `[4, 4, out, in]`: `torch_conv_weight_to_flax` of a
PyTorch `ConvTranspose2d(in, out, 4, 2, 1)` weight gives the same function.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models import layers

_lrelu = layers.lrelu


class SeedGenerator(layers.SRModel):
  """Encoder-decoder SR generator with BatchNorm (the seed design, fixed).

  Channels: num_feat at LR size, min(num_feat * 2^i, num_feat * 4) after the i-th down conv
  (128, 256 by default), halving back through the decoder to num_feat, which the decoder keeps
  beyond the LR size.

  Attributes:
    scale: upscale factor, one of `SUPPORTED_SCALES`.
    num_in_ch: input channels.
    num_out_ch: output channels (must equal `num_in_ch` for the bilinear residual).
    num_feat: feature channels at LR size.
    num_down: stride-2 convs of the encoder.
    kernel_size: odd kernel size of conv_first and conv_last.
    dtype: computation dtype; the output is float32.
    param_dtype: parameter dtype.
  """
  SUPPORTED_SCALES = (2, 4)

  num_in_ch: int = 3
  num_out_ch: int = 3
  num_feat: int = 64
  num_down: int = 2
  kernel_size: int = 9

  def _features(self, level: int) -> int:
    return self.num_feat * min(2**level, 4)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Super-resolves `x`.

    Args:
      x: `[B, H, W, num_in_ch]` in [0, 1], any H, W >= 1.
      train: BatchNorm uses batch statistics and updates its running averages in
        'batch_stats' (apply with `mutable=['batch_stats']`); else it uses the running ones.

    Returns:
      `[B, H*scale, W*scale, num_out_ch]` float32, not clipped.
    """
    _, h, w, _ = x.shape
    multiple = 2**self.num_down
    feat = jnp.pad(x, ((0, 0), (0, -h % multiple), (0, -w % multiple), (0, 0)),
                   mode="reflect")

    def bn_lrelu(feat, name):
      return _lrelu(self.batch_norm(name, train)(feat))

    feat = _lrelu(self.conv(self.num_feat, "conv_first", kernel_size=self.kernel_size)(feat))
    skips = [feat]
    for i in range(1, self.num_down + 1):
      feat = self.conv(self._features(i), f"conv_down{i}", kernel_size=4, stride=2,
                       use_bias=False)(feat)
      skips.append(bn_lrelu(feat, f"bn_down{i}"))
    feat = skips.pop()

    for j in range(1, self.num_down + int(math.log2(self.scale)) + 1):
      level = self.num_down - j  # encoder level of the same size; < 0 beyond the LR size.
      feat = nn.ConvTranspose(
          self._features(max(level, 0)), (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
          use_bias=False, transpose_kernel=True, kernel_init=layers.torch_default_kernel_init,
          dtype=self.dtype, param_dtype=self.param_dtype, name=f"conv_up{j}")(feat)
      feat = bn_lrelu(feat, f"bn_up{j}")
      if level >= 0:
        feat = feat + skips[level]

    base = layers.upsample_bilinear(x.astype(jnp.float32), self.scale)
    feat = feat[:, :h * self.scale, :w * self.scale]
    feat = jnp.concatenate([feat, base.astype(feat.dtype)], axis=-1)
    out = self.conv(self.num_out_ch, "conv_last", kernel_size=self.kernel_size)(feat)
    return out.astype(jnp.float32) + base
