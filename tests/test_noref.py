"""No-reference measures: hand-computed values, invariances, and the right direction under
blur, contrast reduction and nearest-neighbour (staircase) upscaling."""

import pathlib

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from jaxsr import metrics
from jaxsr import noref
from jaxsr.ops import imresize

SET5 = sorted((pathlib.Path(noref.__file__).parent / "samples" / "Set5").glob("*.png"))
Y_RANGE = 219.0 / 255.0  # BT.601 studio-swing Y of RGB in [0, 1] spans 219/255.


def _u8(x):
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _blur(image, sigma=2.0):
  return _u8(ndimage.gaussian_filter(image.astype(np.float64), (sigma, sigma, 0)[:image.ndim]))


def _supersampled(inside, size, factor=8):
  """uint8 gray `[size, size]`: area coverage (x255) of the region `inside(y, x)` (pixels)."""
  coords = (np.arange(size * factor) + 0.5) / factor
  mask = inside(coords[:, None], coords[None, :]).astype(np.float64)
  return _u8(255.0 * mask.reshape(size, factor, size, factor).mean(axis=(1, 3)))


def _disk(size=32, radius=10.0):
  return _supersampled(lambda y, x: (y - size / 2)**2 + (x - size / 2)**2 < radius**2, size)


def _diagonal(size=32, slope=0.6):
  return _supersampled(lambda y, x: y - size / 2 > slope * (x - size / 2), size)


def _nearest_x4(image):
  return np.repeat(np.repeat(image, 4, axis=0), 4, axis=1)


def _bicubic_x4(image):
  image = image.astype(np.float64)[..., None] if image.ndim == 2 else image
  return metrics.to_uint8(imresize.imresize_np(image / 255.0, 4.0)).squeeze()


def _set5(path):
  image = np.asarray(Image.open(path))
  height, width = (np.array(image.shape[:2]) // 4) * 4
  return image[:height, :width]


def _ramp(width, start=10, size=(8, 40), falling=False):
  """uint8 gray: 0 left of `start`, linear over `width` pixels, 255 from `start + width`."""
  x = np.clip((np.arange(size[1]) - start) / width, 0.0, 1.0)
  row = _u8(255.0 * (1.0 - x if falling else x))
  return np.broadcast_to(row, size).copy()


def test_keys_directions_and_crop_border():
  lr = np.random.default_rng(0).integers(0, 256, (6, 8, 3)).astype(np.uint8)
  image = _bicubic_x4(lr)[:, :30]
  measures = noref.measure_all(image, crop_border=3)
  assert list(measures) == list(noref.NOREF_KEYS)
  assert all(direction in ("higher", "lower", "closer to HR")
             for _, direction in noref.NOREF_KEYS.values())
  y = noref.luminance(image[3:-3, 3:-3])
  assert y.shape == (18, 24)
  np.testing.assert_allclose(noref.luminance(image, 3), y, atol=0)
  with pytest.raises(ValueError):
    noref.luminance(np.zeros((4, 4, 4), np.uint8))  # RGBA.
  expected = {"rms_contrast": noref.rms_contrast(y), "sharpness": noref.gradient_sharpness(y),
              "edge_width": noref.edge_width(y), "aliasing": noref.edge_aliasing(y)}
  assert measures == pytest.approx(expected, rel=1e-12)
  assert not any(np.isnan(list(measures.values())))
  with pytest.raises(ValueError):
    noref.rms_contrast(image)  # Measures take luminance [H, W], not RGB.


def test_rms_contrast_hand_computed_and_halved():
  gray = np.full((10, 12), 64, np.uint8)
  gray[:, 6:] = 192  # Two equal halves: std = half the difference.
  assert noref.rms_contrast(noref.luminance(gray)) == pytest.approx(64 / 255, rel=1e-12)
  rgb = np.repeat(gray[..., None], 3, axis=-1)  # Y of gray RGB spans 219/255 of the range.
  expected = 64 / 255 * Y_RANGE
  assert noref.measure_all(rgb)["rms_contrast"] == pytest.approx(expected, rel=1e-9)
  # 0.5 * (x - mean) + mean with mean 128: levels 96 and 160.
  reduced = _u8(0.5 * (rgb.astype(np.float64) - 128.0) + 128.0)
  assert noref.measure_all(reduced)["rms_contrast"] == pytest.approx(expected / 2, rel=1e-9)
  # A smooth colour image: Y is affine in RGB, so only uint8 rounding moves the ratio off 0.5.
  image = _u8(255 * (0.5 + 0.4 * np.sin(np.arange(48)[:, None, None] / 5.0 +
                                        np.arange(40)[None, :, None] / 7.0 +
                                        np.arange(3) * 1.3)))
  mean = image.reshape(-1, 3).mean(axis=0)
  half = _u8(0.5 * (image - mean) + mean)
  ratio = noref.measure_all(half)["rms_contrast"] / noref.measure_all(image)["rms_contrast"]
  assert ratio == pytest.approx(0.5, abs=0.01)


def test_constant_image_and_brightness_shift():
  constant = noref.measure_all(np.full((16, 20, 3), 77, np.uint8))
  assert constant["rms_contrast"] == pytest.approx(0.0, abs=1e-12)
  assert constant["sharpness"] == pytest.approx(0.0, abs=1e-12)
  assert np.isnan(constant["edge_width"]) and np.isnan(constant["aliasing"])  # No edges.
  image = _blur(_bicubic_x4(_disk(12, 4.0)), 1.0) // 2  # Values in [0, 128]: no clipping below.
  base, shifted = noref.measure_all(image), noref.measure_all(image + 60)
  assert not any(np.isnan(list(base.values())))
  assert shifted == pytest.approx(base, rel=1e-6)  # Only differences of Y matter.


def test_sharpness_of_a_ramp_hand_computed():
  width = 20
  gray = np.broadcast_to((3 * np.arange(width)).astype(np.uint8), (6, width))
  # Slope 3/255 per pixel; the replicated border halves the central difference at both ends.
  expected = ((width - 2) * 3 + 2 * 1.5) / width / 255
  assert noref.gradient_sharpness(noref.luminance(gray)) == pytest.approx(expected, rel=1e-12)
  assert noref.gradient_sharpness(noref.luminance(gray.T)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("width", [1, 3, 5, 8, 15])
@pytest.mark.parametrize("falling", [False, True])
def test_edge_width_of_a_ramp(width, falling):
  ramp = _ramp(width, falling=falling)
  if 255 % width == 0:  # Exact uint8 ramp: exactly `width`.
    assert noref.edge_width(noref.luminance(ramp)) == width
  assert noref.edge_width(noref.luminance(ramp)) == pytest.approx(width, abs=1)
  assert noref.edge_width(noref.luminance(ramp.T)) == pytest.approx(width, abs=1)


def test_edge_width_threshold_and_no_edges():
  ramp = noref.luminance(_ramp(15))  # Slope 1/15 per pixel.
  assert noref.edge_width(ramp, threshold=0.06) == 15
  assert np.isnan(noref.edge_width(ramp, threshold=0.07))


def test_blur_lowers_sharpness_and_widens_edges_on_a_disk():
  disk = _bicubic_x4(_disk())
  sharp, blurred = noref.measure_all(disk), noref.measure_all(_blur(disk, 2.0))
  more_blurred = noref.measure_all(_blur(disk, 4.0))
  assert sharp["sharpness"] > blurred["sharpness"] > more_blurred["sharpness"]
  assert sharp["edge_width"] < blurred["edge_width"] < more_blurred["edge_width"]


def test_aliasing_of_smooth_and_axis_aligned_edges():
  vertical = np.zeros((16, 16), np.uint8)
  vertical[:, 8:] = 200  # Same orientation at both scales: exactly 0 degrees.
  assert noref.edge_aliasing(noref.luminance(vertical)) == 0.0
  disk = _disk(128, 40.0)  # Anti-aliased analytic disk: nearly no disagreement.
  assert noref.edge_aliasing(noref.luminance(disk)) < 3.0
  y = noref.luminance(_nearest_x4(_disk()))
  aliasing = noref.edge_aliasing(y)
  assert noref.edge_aliasing(1.0 - y) == pytest.approx(aliasing, rel=1e-9)  # Polarity.
  assert noref.edge_aliasing(y.T) == pytest.approx(aliasing, rel=1e-9)
  assert 0.0 < aliasing <= 90.0


@pytest.mark.parametrize("make_lr", [_disk, _diagonal], ids=["disk", "diagonal"])
def test_nearest_upscale_is_more_aliased_than_bicubic(make_lr):
  lr = make_lr()
  nearest = noref.measure_all(_nearest_x4(lr))["aliasing"]
  bicubic = noref.measure_all(_bicubic_x4(lr))["aliasing"]
  assert nearest > 3.0 * bicubic


@pytest.mark.parametrize("path", SET5, ids=[p.stem for p in SET5])
def test_set5_degradations_move_measures_the_right_way(path):
  hr = _set5(path)
  lr = metrics.to_uint8(imresize.imresize_np(hr / 255.0, 0.25))
  measures = {name: noref.measure_all(image, crop_border=4) for name, image in (
      ("hr", hr), ("blurred", _blur(hr)), ("bicubic", _bicubic_x4(lr)),
      ("nearest", _nearest_x4(lr)))}
  assert measures["blurred"]["sharpness"] < 0.9 * measures["hr"]["sharpness"]
  assert measures["blurred"]["edge_width"] > 1.5 * measures["hr"]["edge_width"]
  assert measures["bicubic"]["sharpness"] < measures["hr"]["sharpness"]
  assert measures["bicubic"]["edge_width"] > measures["hr"]["edge_width"]
  assert measures["nearest"]["aliasing"] > 2.0 * measures["bicubic"]["aliasing"]
  assert measures["nearest"]["aliasing"] > measures["hr"]["aliasing"]
