"""MATLAB colour conversion and BasicSR PSNR/SSIM against golden values and hand computations."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import metrics
from jaxsr.ops import color

from tests import utils

pytestmark = pytest.mark.numerics

METRIC_CASES = ("bird_bicubic_x2", "butterfly_bicubic_x3", "head_bicubic_x4", "baby_noise8")


@functools.lru_cache(maxsize=None)
def _golden(data_dir):
  with np.load(data_dir / "metrics_golden.npz") as f:
    return dict(f)


@pytest.mark.parametrize("as_array", [np.asarray, jnp.asarray], ids=["numpy", "jax"])
def test_rgb_to_y_on_known_colours(as_array):
  rgb = as_array(np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32))
  y = color.rgb_to_y(rgb)
  assert isinstance(y, type(rgb)) and y.dtype == np.float32 and y.shape == (5,)
  expected = np.array([16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966]) / 255
  # float32: three products, their sum, the offset and the division by 255 (float64 expected).
  utils.assert_close(np.asarray(y), expected, ops=6, magnitude=1.0)


def test_rgb_to_ycbcr_gray_and_y_consistency():
  rgb = np.random.default_rng(0).uniform(size=(4, 5, 3))
  ycbcr = color.rgb_to_ycbcr(rgb)
  np.testing.assert_allclose(ycbcr[..., 0], color.rgb_to_y(rgb), atol=1e-12)
  gray = color.rgb_to_ycbcr(np.full((2, 3), 0.4))
  np.testing.assert_allclose(gray[:, 1:], 128 / 255, atol=1e-12)  # No chroma.
  with pytest.raises(TypeError):
    color.rgb_to_y(np.zeros((2, 3), np.uint8))


@pytest.mark.parametrize("as_array", [np.asarray, jnp.asarray], ids=["numpy", "jax"])
def test_ycbcr_round_trip(as_array):
  rgb = as_array(np.random.default_rng(1).uniform(size=(3, 4, 3)).astype(np.float32))
  restored = color.ycbcr_to_rgb(color.rgb_to_ycbcr(rgb))
  # MATLAB's inverse matrix is rounded to 8 digits: not an exact inverse.
  np.testing.assert_allclose(np.asarray(restored), np.asarray(rgb), rtol=0, atol=1e-4)


@pytest.mark.parametrize("case", METRIC_CASES)
def test_metrics_match_basicsr(data_dir, case):
  golden = _golden(data_dir)
  sr, hr = golden[f"{case}/sr"], golden[f"{case}/hr"]
  crop = int(golden[f"{case}/crop_border"])
  assert abs(metrics.psnr(sr, hr, crop) - golden[f"{case}/psnr_y"]) <= 1e-3
  assert abs(metrics.ssim(sr, hr, crop) - golden[f"{case}/ssim_y"]) <= 1e-4
  assert abs(metrics.psnr(sr, hr, crop, test_y_channel=False) - golden[f"{case}/psnr_rgb"]) <= 1e-3
  assert abs(metrics.ssim(sr, hr, crop, test_y_channel=False) - golden[f"{case}/ssim_rgb"]) <= 1e-4


def test_metrics_of_identical_images(data_dir):
  hr = _golden(data_dir)["baby_noise8/hr"]
  assert metrics.psnr(hr, hr.copy(), 4) == math.inf
  assert metrics.psnr(hr, hr.copy(), 0, test_y_channel=False) == math.inf
  assert metrics.ssim(hr, hr.copy(), 4) == pytest.approx(1.0, abs=1e-12)


def test_psnr_of_known_error_and_crop():
  hr = np.zeros((20, 20, 3), np.uint8)
  sr = hr.copy()
  sr[2:-2, 2:-2] = 1  # Error 1 everywhere but the 2-pixel border.
  assert metrics.psnr(sr, hr, 2, test_y_channel=False) == pytest.approx(10 * math.log10(255**2))
  assert metrics.psnr(sr, hr, 3, test_y_channel=False) == pytest.approx(10 * math.log10(255**2))
  # Y of an RGB step of 1 is (65.481 + 128.553 + 24.966) / 255 = 219 / 255.
  assert metrics.psnr(sr, hr, 2) == pytest.approx(10 * math.log10(255**2 / (219 / 255)**2))
  with pytest.raises(ValueError):
    metrics.psnr(sr[1:], hr, 2)


def test_ssim_drops_for_distortion():
  hr = (np.random.default_rng(2).uniform(size=(40, 40, 3)) * 255).astype(np.uint8)
  noisy = np.clip(hr + np.random.default_rng(3).normal(0, 20, hr.shape), 0, 255).astype(np.uint8)
  assert 0 < metrics.ssim(noisy, hr, 0) < 0.99
  assert metrics.ssim(noisy, hr, 0) < metrics.ssim(hr, hr, 0)


def test_to_uint8_clips_and_rounds():
  x = np.array([-0.2, 0.0, 0.4 / 255, 0.6 / 255, 100.4 / 255, 1.0, 1.3], np.float32)
  np.testing.assert_array_equal(metrics.to_uint8(x), [0, 0, 0, 1, 100, 255, 255])
  assert metrics.to_uint8(jnp.asarray(x)).dtype == np.uint8


def test_batch_psnr_by_hand():
  hr = np.random.default_rng(4).uniform(0.2, 0.8, size=(2, 6, 5, 3)).astype(np.float32)
  sr = hr + np.array([0.1, 0.01], np.float32)[:, None, None, None]
  # MSE 1e-2 -> 20 dB and 1e-4 -> 40 dB; the batch mean is 30 dB.
  # float32: the MSE of 90 values is relative-exact to ~90 * 2 eps, 4.3 dB per unit of relative
  # error; sr - hr is 0.1 / 0.01 only to float32 rounding of values near 1 (1e-5 relative at
  # 0.01, 1e-4 dB): 1e-3 dB holds on any machine, while a wrong mean or log is off by >> 0.01 dB.
  psnr = jax.jit(metrics.batch_psnr)(sr, hr)
  assert psnr.shape == () and float(psnr) == pytest.approx(30.0, abs=1e-3)
  psnr_255 = metrics.batch_psnr(sr * 255, hr * 255, max_val=255.0)
  assert float(psnr_255) == pytest.approx(30.0, abs=1e-3)
