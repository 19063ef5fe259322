"""Bicubic: the parameter-free baseline "model" (MATLAB `imresize` bicubic upsampling)."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models import layers
from jaxsr.ops import imresize as imresize_ops


class Bicubic(layers.SRModel):
  """MATLAB-compatible bicubic upsampling; has no parameters.

  Attributes:
    scale: upscale factor, one of `SUPPORTED_SCALES`.
    dtype: computation dtype; the output is float32.
    param_dtype: unused (no parameters); kept for a uniform model interface.
  """
  SUPPORTED_SCALES = (1, 2, 3, 4, 8)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Upsamples `x`.

    Args:
      x: `[B, H, W, C]` in [0, 1].
      train: unused; kept for a uniform model signature.

    Returns:
      `[B, H*scale, W*scale, C]` float32, not clipped (bicubic overshoots [0, 1]).
    """
    del train
    out = imresize_ops.imresize(x.astype(self.dtype), self.scale)
    return jnp.asarray(out).astype(jnp.float32)
