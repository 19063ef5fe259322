"""No-reference image measures: contrast, sharpness, blur (edge width), aliasing (jaggies).

Host-side numpy + `scipy.ndimage`, float64, on the luminance `y` of an 8-bit image: Y of
MATLAB `rgb2ycbcr` (BT.601, studio swing, as `jaxsr.metrics` uses for PSNR/SSIM) scaled to
[0, 1] (so Y lies in [16/255, 235/255]); single-channel `[H, W]` images are used as they are
(value / 255). Gradients are derivatives in Y units per pixel.

Measures (`measure_all` keys):
  `rms_contrast`: Peli's RMS contrast, the standard deviation of Y. Units: Y ([0, 1]).
    0 for a constant image; scaling the deviations from the mean by `a` scales it by `a`.
  `sharpness`: Tenengrad-style mean gradient magnitude, mean over all pixels of
    `sqrt(gx^2 + gy^2)` with 3x3 Sobel derivatives (divided by 8, so a ramp of slope `s` per
    pixel gives `s`). Units: Y per pixel. Drops under blur (and under contrast reduction).
  `edge_width`: blur as the mean edge width of Marziliano et al. 2002 ("A no-reference
    perceptual blur metric", the basis of CPBD). Edge pixels of a row: Sobel `|gx| >=
    EDGE_THRESHOLD`, `|gx| >= |gy|` (edge within 45 degrees of vertical, so the row crosses it)
    and `|gx|` a local maximum along the row. An edge's width is the distance between the
    intensity extrema found by walking left and right along the row from the edge pixel while
    Y keeps strictly falling (rising edge, to the left) or rising (to the right); mirrored for
    falling edges; the walk stops at image borders. Columns (horizontal edges) are done the
    same way on the transposed image; the result is the mean over the edge pixels of both
    passes. Units: pixels. NaN when there is no edge pixel. A linear ramp of `w` pixels
    between two flat levels has width `w`; a sharp step has width 1. Noise and fine texture
    end walks early (narrower widths), and blocky nearest-neighbour images read as sharp
    (width ~1): blockiness is what `aliasing` measures.
  `aliasing`: staircase ("jaggies") edges as the orientation disagreement between scales:
    the angle (degrees, in [0, 90], polarity ignored) between the Sobel gradient (fine scale)
    and the Sobel gradient of the image smoothed by a Gaussian of sigma `ALIASING_SIGMA` (coarse
    scale), averaged with weights = fine gradient magnitude over pixels whose coarse gradient
    magnitude is at least `EDGE_THRESHOLD`. A smooth edge has one orientation at both scales;
    a staircase edge (nearest-neighbour upscaling, blocking) is made of axis-aligned steps
    whose fine-scale gradients point along the axes while the coarse edge runs obliquely.
    Units: degrees. Textures give a non-zero baseline. NaN when there is no edge pixel.

Better direction of an image on its own (`NOREF_KEYS`): higher sharpness, lower edge width
and aliasing; contrast has none (too much is as wrong as too little), so "closer to HR". When
a super-resolved image is judged against its HR image, "closer to HR" is the meaningful
direction of every measure: over-sharpened (e.g. GAN) outputs can exceed the HR sharpness or
contrast, and textures give HR itself non-zero aliasing.
"""

import numpy as np
from scipy import ndimage

from jaxsr import metrics

# Gradient magnitude (Y per pixel) above which a pixel may be an edge: a step of contrast
# ~0.25 blurred by a Gaussian of sigma 2 peaks at 0.05.
EDGE_THRESHOLD = 0.02
ALIASING_SIGMA = 2.0
# Tolerance of comparisons (Y per pixel): rounding noise must not break ties, e.g. the equal
# gradients along a linear ramp, differently after a brightness shift.
_TOLERANCE = 1e-9

# Report columns: key -> (short description, better direction of the value on its own).
NOREF_KEYS = {
    "rms_contrast": ("std of luminance Y in [0, 1] (Peli)", "closer to HR"),
    "sharpness": ("mean Sobel gradient magnitude of Y, per pixel (Tenengrad)", "higher"),
    "edge_width": ("blur: mean edge width (Marziliano 2002)", "lower"),
    "aliasing": ("jaggies: angle between fine- and coarse-scale gradient orientations at "
                 "edges (textures add a baseline)", "lower"),
}


def luminance(image, crop_border: int = 0) -> np.ndarray:
  """8-bit image -> float64 luminance `[H - 2b, W - 2b]` in [0, 1].

  Args:
    image: uint8 (or float in [0, 255]) RGB `[H, W, 3]` (-> BT.601 Y, in [16/255, 235/255])
      or gray `[H, W]` (-> value / 255).
    crop_border: pixels `b` removed from each border.
  """
  y = metrics.prepare(image, crop_border, test_y_channel=True)
  if y.shape[-1] != 1:
    raise ValueError(f"Expected an RGB [H, W, 3] or gray [H, W] image, got {np.shape(image)}.")
  return y[..., 0] / 255.0


def _gradients(y):
  """Sobel `(gx, gy, magnitude)` of `[H, W]`, in Y per pixel (a unit-slope ramp gives 1)."""
  gx = ndimage.sobel(y, axis=1, mode="nearest") / 8.0
  gy = ndimage.sobel(y, axis=0, mode="nearest") / 8.0
  return gx, gy, np.hypot(gx, gy)


def _as_y(y):
  y = np.asarray(y, np.float64)
  if y.ndim != 2:
    raise ValueError(f"Expected luminance [H, W], got shape {y.shape}.")
  return y


def rms_contrast(y) -> float:
  """Peli's RMS contrast: standard deviation of luminance `y` `[H, W]` in [0, 1]."""
  return float(np.std(_as_y(y)))


def gradient_sharpness(y) -> float:
  """Mean Sobel gradient magnitude (Y per pixel, >= 0) of luminance `y` `[H, W]` in [0, 1]."""
  return float(np.mean(_gradients(_as_y(y))[2]))


def _row_edge_widths(y, gx, gy, threshold):
  """Marziliano widths (pixels) of the row-crossing edge pixels of `y` `[H, W]`, flat `[N]`.

  Works on flat indices: the walk from an edge pixel ends at the nearest "stop" pixel on each
  side, and the first and last pixel of each row are always stops, so no walk leaves its row.
  """
  mag = np.abs(gx)
  padded = np.pad(mag, ((0, 0), (1, 1)))
  is_edge = ((mag >= threshold - _TOLERANCE) & (mag >= np.abs(gy) - _TOLERANCE) &
             (mag >= padded[:, :-2] - _TOLERANCE) & (mag >= padded[:, 2:] - _TOLERANCE))
  diff = np.diff(y, axis=1)  # diff[:, j] = y[:, j + 1] - y[:, j].
  widths = []
  for sign in (1.0, -1.0):  # Rising, then falling edges.
    edges = np.flatnonzero(is_edge & (sign * gx > 0))
    if not edges.size:
      continue
    not_monotone = sign * diff <= _TOLERANCE
    # Walking left (right) ends at j when y does not keep changing monotonically past j.
    stop_left = np.ones(y.shape, bool)
    stop_left[:, 1:] = not_monotone
    stop_right = np.ones(y.shape, bool)
    stop_right[:, :-1] = not_monotone
    left_stops, right_stops = np.flatnonzero(stop_left), np.flatnonzero(stop_right)
    left = left_stops[np.searchsorted(left_stops, edges, side="right") - 1]
    right = right_stops[np.searchsorted(right_stops, edges, side="left")]
    widths.append(right - left)
  return np.concatenate(widths).astype(np.float64) if widths else np.zeros(0)


def _edge_width(y, gx, gy, threshold):
  widths = np.concatenate([
      _row_edge_widths(y, gx, gy, threshold),
      _row_edge_widths(np.ascontiguousarray(y.T), gy.T, gx.T, threshold)])
  return float(widths.mean()) if widths.size else float("nan")


def edge_width(y, threshold: float = EDGE_THRESHOLD) -> float:
  """Blur: mean Marziliano edge width (pixels, >= 0) over row and column edges; NaN if none.

  Args:
    y: luminance `[H, W]` in [0, 1].
    threshold: minimum Sobel derivative (Y per pixel) of an edge pixel.
  """
  y = _as_y(y)
  gx, gy, _ = _gradients(y)
  return _edge_width(y, gx, gy, threshold)


def _aliasing(y, fine_gradients, sigma, threshold):
  fx, fy, fine = fine_gradients
  cx, cy, coarse = _gradients(ndimage.gaussian_filter(y, sigma, mode="nearest"))
  mask = (coarse >= threshold - _TOLERANCE) & (fine > _TOLERANCE)
  weight = fine[mask]
  if not weight.size:
    return float("nan")
  cosine = np.abs(fx * cx + fy * cy)[mask] / (weight * coarse[mask])
  angle = np.degrees(np.arccos(np.clip(cosine, 0.0, 1.0)))
  return float(np.sum(weight * angle) / np.sum(weight))


def edge_aliasing(y, sigma: float = ALIASING_SIGMA, threshold: float = EDGE_THRESHOLD) -> float:
  """Jaggies: weighted mean angle (degrees, in [0, 90]) between fine and coarse gradients.

  Args:
    y: luminance `[H, W]` in [0, 1].
    sigma: Gaussian standard deviation (pixels) of the coarse scale.
    threshold: minimum coarse gradient magnitude (Y per pixel) of an edge pixel.

  Returns:
    Mean angle weighted by the fine (Sobel) gradient magnitude over edge pixels; NaN if none.
  """
  y = _as_y(y)
  return _aliasing(y, _gradients(y), sigma, threshold)


def measure_all(image, crop_border: int = 0) -> dict[str, float]:
  """All measures of `NOREF_KEYS` for an 8-bit image.

  Args:
    image: uint8 RGB `[H, W, 3]` or gray `[H, W]` (values in [0, 255]).
    crop_border: pixels removed from each border first (usually the SR scale).

  Returns:
    `{"rms_contrast", "sharpness", "edge_width", "aliasing"}` -> float.
  """
  y = luminance(image, crop_border)
  gx, gy, magnitude = _gradients(y)  # Shared by three measures.
  return {"rms_contrast": rms_contrast(y), "sharpness": float(np.mean(magnitude)),
          "edge_width": _edge_width(y, gx, gy, EDGE_THRESHOLD),
          "aliasing": _aliasing(y, (gx, gy, magnitude), ALIASING_SIGMA, EDGE_THRESHOLD)}
