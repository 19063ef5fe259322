"""PSNR / SSIM as SR papers report them (BasicSR `basicsr/metrics/psnr_ssim.py`).

`psnr` and `ssim` run on the host in float64 numpy on 8-bit images `[H, W, 3]` (uint8, or
floats in [0, 255]), or on single-channel images `[H, W]` which are compared as they are (the
MATLAB evaluation scripts of EDSR/RCAN do so for grayscale files, e.g. Set14 `bridge`);
`batch_psnr` is a jit-friendly JAX PSNR for training logs.
"""

from typing import List, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.ops import color

_SSIM_WINDOW_SIZE = 11
_SSIM_SIGMA = 1.5
_SSIM_C1 = (0.01 * 255.0)**2
_SSIM_C2 = (0.03 * 255.0)**2


def to_gray_uint8(rgb) -> np.ndarray:
  """uint8 RGB `[H, W, 3]` -> uint8 gray `[H, W]` as MATLAB `rgb2gray` (rounded)."""
  return to_uint8(color.rgb_to_gray(np.asarray(rgb, np.float64) / 255.0))


def to_uint8(x) -> np.ndarray:
  """Float image in [0, 1] -> uint8 as BasicSR `tensor2img`: clip, then `(x * 255).round()`."""
  x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
  return (x * np.float32(255.0)).round().astype(np.uint8)


def prepare(image, crop_border, test_y_channel):
  """8-bit RGB `[H, W, 3]` (or gray `[H, W]`) -> float64 `[H - 2b, W - 2b, C]` in [0, 255]
  (C = 1 for Y or gray)."""
  image = np.asarray(image, np.float64)
  if image.ndim == 2:
    image = image[..., None]
  if crop_border:
    image = image[crop_border:-crop_border, crop_border:-crop_border]
  if test_y_channel and image.shape[-1] == 3:
    image = color.rgb_to_y(image / 255.0)[..., None] * 255.0
  return image


def _check_shapes(sr, hr):
  if np.shape(sr) != np.shape(hr):
    raise ValueError(f"Image shapes differ: {np.shape(sr)} vs {np.shape(hr)}.")


def squared_error(sr, hr, crop_border: int, test_y_channel: bool = True) -> Tuple[float, int]:
  """(sum of squared errors, number of values) of the images `psnr` compares (same arguments):
  its sufficient statistics, exact to reduce over images computed elsewhere."""
  _check_shapes(sr, hr)
  sr, hr = (prepare(x, crop_border, test_y_channel) for x in (sr, hr))
  errors = (sr - hr)**2
  # np.sum reduces as np.mean does: sum / count is bitwise np.mean.
  return float(np.sum(errors)), int(errors.size)


def psnr_from_squared_error(sum_squared_error: float, count: int) -> float:
  """PSNR in dB (max 255) from `squared_error`'s statistics; inf when they are 0."""
  mse = sum_squared_error / count
  if mse == 0:
    return float("inf")
  return float(10.0 * np.log10(255.0 * 255.0 / mse))


def psnr(sr, hr, crop_border: int, test_y_channel: bool = True) -> float:
  """PSNR in dB (max 255) of 8-bit RGB images `[H, W, 3]`; inf for identical images.

  Args:
    sr: restored image, uint8 or float in [0, 255].
    hr: ground truth, same shape.
    crop_border: pixels removed from each border before comparing (usually the scale).
    test_y_channel: compare the Y channel of MATLAB `rgb2ycbcr` (papers) instead of RGB.
  """
  return psnr_from_squared_error(*squared_error(sr, hr, crop_border, test_y_channel))


def _gaussian_kernel_1d(size=_SSIM_WINDOW_SIZE, sigma=_SSIM_SIGMA):
  """Normalised Gaussian `[size]`, as `cv2.getGaussianKernel(size, sigma)`."""
  offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
  kernel = np.exp(-offsets**2 / (2.0 * sigma**2))
  return kernel / kernel.sum()


def _filter_valid(image, kernel):
  """'Valid' correlation of `[H, W]` with the separable window `outer(kernel, kernel)`."""
  size = kernel.shape[0]
  rows = np.lib.stride_tricks.sliding_window_view(image, size, axis=0) @ kernel
  return np.lib.stride_tricks.sliding_window_view(rows, size, axis=1) @ kernel


def _ssim_map(x, y):
  """SSIM map `[H - 10, W - 10]` of two float64 `[H, W]` images in [0, 255]."""
  kernel = _gaussian_kernel_1d()
  mu_x, mu_y = _filter_valid(x, kernel), _filter_valid(y, kernel)
  var_x = _filter_valid(x * x, kernel) - mu_x**2
  var_y = _filter_valid(y * y, kernel) - mu_y**2
  cov_xy = _filter_valid(x * y, kernel) - mu_x * mu_y
  return (((2.0 * mu_x * mu_y + _SSIM_C1) * (2.0 * cov_xy + _SSIM_C2)) /
          ((mu_x**2 + mu_y**2 + _SSIM_C1) * (var_x + var_y + _SSIM_C2)))


def ssim_sums(sr, hr, crop_border: int, test_y_channel: bool = True) -> Tuple[List[float], int]:
  """([sum of the SSIM map of each channel], values per map) of the images `ssim` compares
  (same arguments): its sufficient statistics."""
  _check_shapes(sr, hr)
  sr, hr = (prepare(x, crop_border, test_y_channel) for x in (sr, hr))
  maps = [_ssim_map(sr[..., c], hr[..., c]) for c in range(sr.shape[-1])]
  # np.sum reduces as np.mean does: sum / count is bitwise np.mean.
  return [float(np.sum(m)) for m in maps], int(maps[0].size)


def ssim_from_sums(sums: List[float], count: int) -> float:
  """SSIM from `ssim_sums`'s statistics: the mean over channels of the mean of each map."""
  return float(np.mean([s / count for s in sums]))


def ssim(sr, hr, crop_border: int, test_y_channel: bool = True) -> float:
  """SSIM (11x11 Gaussian window, sigma 1.5, 'valid') of 8-bit RGB images `[H, W, 3]`.

  Arguments as in `psnr`. RGB SSIM is the mean over the three channels.
  """
  return ssim_from_sums(*ssim_sums(sr, hr, crop_border, test_y_channel))


def batch_psnr(sr: jax.Array, hr: jax.Array, max_val: float = 1.0) -> jax.Array:
  """Mean over the batch of per-image RGB PSNR (dB) of float `[B, H, W, C]` in [0, max_val].

  No rounding, no border crop, no Y channel: a cheap training-time signal. Returns `[]`
  float32 (inf if some image is reproduced exactly).
  """
  sr, hr = jnp.asarray(sr, jnp.float32), jnp.asarray(hr, jnp.float32)
  mse = jnp.mean(jnp.square(sr - hr), axis=(1, 2, 3))
  return jnp.mean(10.0 * jnp.log10(max_val**2 / mse))
