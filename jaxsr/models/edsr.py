"""EDSR (BasicSR `basicsr/archs/edsr_arch.py`).

Submodules (BasicSR names): conv_first, body_0..body_{num_block-1} (conv1, conv2),
conv_after_body, upsample_<k> (the convs of BasicSR's `Upsample` sequential, k = its index:
upsample_0, upsample_2, ... for 2^n; upsample_0 for 3), conv_last. Weight import rule: see
`layers`.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models import layers
from jaxsr.models import trunk


class EDSR(layers.SRModel):
  """Enhanced deep residual network; baseline: num_feat=64, num_block=16, res_scale=1.

  The full EDSR uses num_feat=256, num_block=32, res_scale=0.1.

  Attributes:
    scale: upscale factor, one of `SUPPORTED_SCALES`.
    num_in_ch: input channels.
    num_out_ch: output channels.
    num_feat: feature channels.
    num_block: residual blocks.
    res_scale: residual scale inside the blocks.
    img_range: inputs are mapped to `(x - rgb_mean) * img_range`.
    rgb_mean: per-channel mean in [0, 1] (DIV2K).
    scan_blocks: compile one residual block and scan it over the blocks' parameters
      (`trunk.apply_blocks`; same parameters and values) instead of unrolling them.
    remat: recompute each block's activations in the backward pass instead of keeping them.
    dtype: computation dtype; the output is float32.
    param_dtype: parameter dtype.
  """
  SUPPORTED_SCALES = (2, 3, 4, 8)

  num_in_ch: int = 3
  num_out_ch: int = 3
  num_feat: int = 64
  num_block: int = 16
  res_scale: float = 1.0
  img_range: float = 255.0
  rgb_mean: tuple[float, ...] = layers.DIV2K_RGB_MEAN
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
    conv = self.conv  # PyTorch's default init, as BasicSR.
    mean = jnp.asarray(self.rgb_mean, jnp.float32)

    x = (x.astype(jnp.float32) - mean) * self.img_range
    x = conv(self.num_feat, "conv_first")(x)
    blocks = [layers.ResidualBlockNoBN(self.num_feat, res_scale=self.res_scale,
                                       init_scale=None, dtype=self.dtype,
                                       param_dtype=self.param_dtype, name=f"body_{i}")
              for i in range(self.num_block)]
    res = trunk.apply_blocks(self, blocks, x, scan=self.scan_blocks, remat=self.remat)
    res = conv(self.num_feat, "conv_after_body")(res) + x

    res = layers.pixel_shuffle_upsample(conv, res, self.scale, "upsample")

    out = conv(self.num_out_ch, "conv_last")(res)
    return out.astype(jnp.float32) / self.img_range + mean
