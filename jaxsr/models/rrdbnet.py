"""RRDBNet (BasicSR `basicsr/archs/rrdbnet_arch.py`), the ESRGAN generator.

Submodules (BasicSR names): conv_first, body_0..body_{num_block-1} (each an RRDB with rdb1,
rdb2, rdb3, each with conv1..conv5), conv_body, conv_up1..conv_up<n>, conv_hr, conv_last.
Weight import rule: see `layers`; the other layouts of these weights (the original ESRGAN
repository's, BSRGAN's) are renamed by `interop.families.rrdbnet`.

The trunk upsamples by `trunk_scale` (n = log2 of it nearest x2 + conv stages; BasicSR: always
4); a smaller `scale` first pixel-unshuffles the input by trunk_scale / scale (BasicSR's x2 and
x1, Real-ESRGAN's x2plus), reflect-padding it to a multiple of that factor and cropping the
output, as Real-ESRGAN's and spandrel's inference do. Scale 3 cannot be expressed.
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models import layers
from jaxsr.models import trunk

Dtype = Any

_RESIDUAL_SCALE = 0.2
_lrelu = layers.lrelu


class ResidualDenseBlock(nn.Module):
  """Five densely connected convs; returns x + 0.2 * conv5(...). `[B, H, W, num_feat]`.

  BasicSR initialises these convs with kaiming normal * 0.1 and zero bias.
  """
  num_feat: int = 64
  num_grow_ch: int = 32
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = lambda features, name: layers.Conv2d(
        features, init_scale=0.1, dtype=self.dtype, param_dtype=self.param_dtype, name=name)
    # Each conv reads the channel concatenation of all features so far; passed as the list,
    # which the CPU computes without concatenating (see `layers.Conv2d`).
    feats = [x]
    for i in range(1, 5):
      feats.append(_lrelu(conv(self.num_grow_ch, f"conv{i}")(feats)))
    x5 = conv(self.num_feat, "conv5")(feats)
    return x5 * _RESIDUAL_SCALE + x


class RRDB(nn.Module):
  """Residual in residual dense block: x + 0.2 * rdb3(rdb2(rdb1(x))). `[B, H, W, num_feat]`."""
  num_feat: int = 64
  num_grow_ch: int = 32
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    out = x
    for name in ("rdb1", "rdb2", "rdb3"):
      out = ResidualDenseBlock(self.num_feat, self.num_grow_ch, dtype=self.dtype,
                               param_dtype=self.param_dtype, name=name)(out)
    return out * _RESIDUAL_SCALE + x


class RRDBNet(layers.SRModel):
  """ESRGAN generator. Default (num_feat=64, num_block=23, num_grow_ch=32) has 16.7M params.

  Attributes:
    scale: upscale factor, one of `SUPPORTED_SCALES`: trunk_scale, or trunk_scale / 2 or / 4
      via pixel-unshuffle.
    num_in_ch: input channels.
    num_out_ch: output channels.
    num_feat: feature channels.
    num_block: RRDB blocks.
    num_grow_ch: growth channels of the dense blocks.
    trunk_scale: the upsampling of the convolution trunk, 1, 2, 4 or 8; None: BasicSR's 4
      (8 for scale 8).
    scan_blocks: compile one RRDB and scan it over the blocks' parameters
      (`trunk.apply_blocks`; same parameters and values, a program ~20x smaller and faster
      to compile) instead of unrolling the trunk.
    remat: recompute each RRDB's activations in the backward pass instead of keeping them
      (less memory, ~1/3 more compute).
    dtype: computation dtype; the output is float32.
    param_dtype: parameter dtype.
  """
  SUPPORTED_SCALES = (1, 2, 4, 8)
  TRUNK_SCALES = (1, 2, 4, 8)

  num_in_ch: int = 3
  num_out_ch: int = 3
  num_feat: int = 64
  num_block: int = 23
  num_grow_ch: int = 32
  trunk_scale: Optional[int] = None
  scan_blocks: bool = True
  remat: bool = False

  def __post_init__(self):
    super().__post_init__()
    up = self.upsampling
    if up not in self.TRUNK_SCALES or up % self.scale or up // self.scale > 4:
      raise ValueError(f"RRDBNet: scale {self.scale} with trunk_scale {up}: the trunk "
                       f"upsamples by one of {self.TRUNK_SCALES} and the scale must be it or "
                       "it / 2 or / 4 (pixel-unshuffle)")

  @property
  def upsampling(self) -> int:
    """The trunk's upsampling: `trunk_scale`, by default 4 (8 for scale 8)."""
    return self.trunk_scale or max(4, self.scale)

  @property
  def input_multiple(self) -> int:
    """The pixel-unshuffle factor: tiles must be multiples of it (other sizes are padded)."""
    return self.upsampling // self.scale

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
    conv = self.conv  # BasicSR leaves these convs at PyTorch's default init.

    height, width = x.shape[1:3]
    unshuffle = self.input_multiple
    if unshuffle > 1:
      x = jnp.pad(x, ((0, 0), (0, -height % unshuffle), (0, -width % unshuffle), (0, 0)),
                  mode="reflect")
      x = layers.pixel_unshuffle(x, unshuffle)
    feat = conv(self.num_feat, "conv_first")(x)
    blocks = [RRDB(self.num_feat, self.num_grow_ch, dtype=self.dtype,
                   param_dtype=self.param_dtype, name=f"body_{i}")
              for i in range(self.num_block)]
    body = trunk.apply_blocks(self, blocks, feat, scan=self.scan_blocks, remat=self.remat)
    feat = feat + conv(self.num_feat, "conv_body")(body)

    for stage in range(1, self.upsampling.bit_length()):
      feat = _lrelu(conv(self.num_feat, f"conv_up{stage}")(layers.upsample_nearest(feat, 2)))
    out = conv(self.num_out_ch, "conv_last")(_lrelu(conv(self.num_feat, "conv_hr")(feat)))
    return out[:, :height * self.scale, :width * self.scale].astype(jnp.float32)
