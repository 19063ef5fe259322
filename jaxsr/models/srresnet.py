"""MSRResNet (BasicSR `basicsr/archs/srresnet_arch.py`): SRResNet without BatchNorm.

Submodules (BasicSR names): conv_first, body_0..body_{num_block-1} (conv1, conv2), upconv1,
upconv2 (scale 4 only), conv_hr, conv_last. Weight import rule: see `layers`.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models import layers
from jaxsr.models import trunk


class MSRResNet(layers.SRModel):
  """Modified SRResNet: residual blocks without BN, pixel-shuffle upsampling, bilinear skip.

  Attributes:
    scale: upscale factor, one of `SUPPORTED_SCALES`.
    num_in_ch: input channels.
    num_out_ch: output channels (must equal `num_in_ch` for the bilinear skip).
    num_feat: feature channels.
    num_block: residual blocks.
    scan_blocks: compile one residual block and scan it over the blocks' parameters
      (`trunk.apply_blocks`; same parameters and values) instead of unrolling them.
    remat: recompute each block's activations in the backward pass instead of keeping them.
    dtype: computation dtype; the output is float32.
    param_dtype: parameter dtype.
  """
  SUPPORTED_SCALES = (2, 3, 4)

  num_in_ch: int = 3
  num_out_ch: int = 3
  num_feat: int = 64
  num_block: int = 16
  scan_blocks: bool = True
  remat: bool = False

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
    conv = lambda features, name: self.conv(features, name, init_scale=0.1)
    lrelu = lambda y: nn.leaky_relu(y, negative_slope=0.1)

    feat = lrelu(conv(self.num_feat, "conv_first")(x))
    blocks = [layers.ResidualBlockNoBN(self.num_feat, init_scale=0.1, dtype=self.dtype,
                                       param_dtype=self.param_dtype, name=f"body_{i}")
              for i in range(self.num_block)]
    feat = trunk.apply_blocks(self, blocks, feat, scan=self.scan_blocks, remat=self.remat)

    if self.scale == 4:
      for name in ("upconv1", "upconv2"):
        feat = lrelu(layers.pixel_shuffle(conv(self.num_feat * 4, name)(feat), 2))
    else:
      feat = conv(self.num_feat * self.scale**2, "upconv1")(feat)
      feat = lrelu(layers.pixel_shuffle(feat, self.scale))

    out = conv(self.num_out_ch, "conv_last")(lrelu(conv(self.num_feat, "conv_hr")(feat)))
    base = layers.upsample_bilinear(x.astype(jnp.float32), self.scale)
    return out.astype(jnp.float32) + base
