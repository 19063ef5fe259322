"""JPEG compression as BasicSR's `DiffJPEG(differentiable=False)` does it, batched, per-sample
quality, in JAX.

Steps: RGB -> YCbCr (JFIF, x255), 4:2:0 chroma subsampling (2 x 2 mean), 8 x 8 block DCT,
quantisation by the standard tables scaled by the quality factor (libjpeg's rule on a
continuous quality: 5000 / q below 50, else 200 - 2 q, in percent; no clamping of table entries
or rounding of the quality), rounding (half to even, as torch.round), dequantisation, inverse
DCT, chroma upsampling by repetition, YCbCr -> RGB, clamp to [0, 255], / 255. Images are
zero-padded at the bottom / right to multiples of 16 first and cropped back after.

DiffJPEG's tables are the standard ones *transposed* (it indexes them [horizontal, vertical]
frequency); kept here, since that is what Real-ESRGAN trains with.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.degradations import filters

_HIGHEST = jax.lax.Precision.HIGHEST

# The standard luminance / chrominance tables (ITU T.81 Annex K), row = vertical frequency.
_Y_TABLE = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], np.float32)
_C_TABLE = np.full((8, 8), 99, np.float32)
_C_TABLE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
# As DiffJPEG applies them: [vertical frequency u, horizontal frequency v] = table[v][u].
Y_TABLE, C_TABLE = _Y_TABLE.T, _C_TABLE.T

_RGB_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                        [0.5, -0.418688, -0.081312]], np.float32)
_YCC_TO_RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]],
                       np.float32)
_YCC_SHIFT = np.array([0.0, 128.0, 128.0], np.float32)


def _dct_matrix() -> np.ndarray:
  """D[f, x] = cos((2 x + 1) f pi / 16)."""
  f, x = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
  return np.cos((2 * x + 1) * f * np.pi / 16).astype(np.float32)


_DCT = _dct_matrix()
_ALPHA = np.array([1.0 / np.sqrt(2)] + [1.0] * 7)
_ALPHA2 = np.outer(_ALPHA, _ALPHA).astype(np.float32)


def quality_to_factor(quality: jnp.ndarray) -> jnp.ndarray:
  """DiffJPEG's table scale for a (continuous) quality in (0, 100]."""
  return jnp.where(quality < 50, 5000.0 / quality, 200.0 - quality * 2) / 100.0


def _blocks(channel: jnp.ndarray) -> jnp.ndarray:
  b, h, w = channel.shape
  return channel.reshape(b, h // 8, 8, w // 8, 8)


def _unblocks(blocks: jnp.ndarray) -> jnp.ndarray:
  b, hb, _, wb, _ = blocks.shape
  return blocks.reshape(b, hb * 8, wb * 8)


def _code_channel(channel: jnp.ndarray, table: jnp.ndarray) -> jnp.ndarray:
  """[B, H, W] in [0, 255] -> the same after DCT, quantisation by `table` [B, 8, 8], rounding,
  dequantisation and inverse DCT."""
  dct = jnp.asarray(_DCT)
  blocks = _blocks(channel - 128.0)
  coeffs = jnp.einsum("fx,bixjy,gy->bifjg", dct, blocks, dct, precision=_HIGHEST)
  coeffs = coeffs * (0.25 * jnp.asarray(_ALPHA2))[None, None, :, None, :]
  table = table[:, None, :, None, :]
  coeffs = jnp.round(coeffs / table) * table
  coeffs = coeffs * jnp.asarray(_ALPHA2)[None, None, :, None, :]
  pixels = 0.25 * jnp.einsum("fx,bifjg,gy->bixjy", dct, coeffs, dct, precision=_HIGHEST)
  return _unblocks(pixels) + 128.0


def jpeg(images: jnp.ndarray, quality: jnp.ndarray, hw: jnp.ndarray = None) -> jnp.ndarray:
  """JPEG-compresses and decodes each image at its own quality (DiffJPEG, differentiable=False).

  Args:
    images: [B, H, W, 3] in [0, 1] (callers clamp first, as Real-ESRGAN does).
    quality: [B] qualities in (0, 100] (continuous).
    hw: int32 [B, 2] valid sizes of canvases (pixels outside are treated as the zero padding
      DiffJPEG adds; they must not be used after), or None for whole images.

  Returns:
    [B, H, W, 3] in [0, 1].
  """
  batch, height, width, _ = images.shape
  if hw is not None:
    images = jnp.where(filters.valid_mask(hw, height, width), images, 0.0)
  pad_h, pad_w = -height % 16, -width % 16
  x = jnp.pad(images, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
  ycc = jnp.einsum("bhwc,dc->bhwd", x * 255.0, jnp.asarray(_RGB_TO_YCC),
                   precision=_HIGHEST) + jnp.asarray(_YCC_SHIFT)
  factor = quality_to_factor(jnp.asarray(quality, jnp.float32).reshape(batch))[:, None, None]
  y = _code_channel(ycc[..., 0], jnp.asarray(Y_TABLE) * factor)
  chroma = []
  for c in (1, 2):
    b, h, w = ycc.shape[:3]
    sub = ycc[..., c].reshape(b, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    coded = _code_channel(sub, jnp.asarray(C_TABLE) * factor)
    chroma.append(jnp.repeat(jnp.repeat(coded, 2, axis=1), 2, axis=2))
  ycc = jnp.stack([y] + chroma, axis=-1) - jnp.asarray(_YCC_SHIFT)
  rgb = jnp.einsum("bhwd,cd->bhwc", ycc, jnp.asarray(_YCC_TO_RGB), precision=_HIGHEST)
  return (jnp.clip(rgb, 0.0, 255.0) / 255.0)[:, :height, :width]
