"""Degradation ops against golden vectors of the real BasicSR 1.4.2 / Real-ESRGAN 0.3.0 code
(tests/data/degradation_golden.npz, made by tests/data/make_degradation_golden.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr.degradations import filters
from jaxsr.degradations import jpeg
from jaxsr.degradations import kernels
from jaxsr.degradations import noise
from jaxsr.degradations import resize
from tests import utils
from tests.conftest import DATA_DIR

# Golden vectors of PyTorch's float32 code, values in [0, 1]: absolute tolerances of 1e-6 (~8
# float32 eps) for kernels, a few transcendental terms normalised, and 1e-5 (~84 eps) for filtered,
# resized or noisy images, sums of up to 21x21 taps of mostly positive weights (worst case
# 2 x 441 eps = 1e-4; measured within 1e-5 with SSE4.2, AVX2 and AVX-512 code). A flipped
# kernel, a wrong tap or a misplaced border is off by 1e-2 or more.
pytestmark = pytest.mark.numerics


@pytest.fixture(scope="module")
def golden():
  with np.load(DATA_DIR / "degradation_golden.npz") as f:
    return dict(f)


def _float(images):
  return jnp.asarray(images, jnp.float32) / 255.0


def _params(row):
  type_id, size, sigma_x, sigma_y, theta, beta, omega_c = row
  return {"kernel_type": jnp.int32(type_id), "kernel_size": jnp.int32(size),
          "sigma_x": jnp.float32(sigma_x), "sigma_y": jnp.float32(sigma_y),
          "theta": jnp.float32(theta), "beta": jnp.float32(beta),
          "omega_c": jnp.float32(omega_c)}


def test_every_kernel_constructor_matches_basicsr(golden):
  rows = golden["kernel_params"]
  assert set(rows[:, 0].astype(int)) == set(range(7))  # Every type, incl. sinc.
  assert set(rows[:, 1].astype(int)) == set(range(7, 22, 2))  # Every size.
  make = jax.jit(jax.vmap(kernels.make_kernel))
  params = jax.tree.map(lambda *x: jnp.stack(x), *[_params(r) for r in rows])
  ours = np.asarray(make(params), np.float64)
  np.testing.assert_allclose(ours, golden["kernels"], rtol=0, atol=1e-6)
  np.testing.assert_allclose(ours.sum(axis=(1, 2)), 1.0, atol=1e-5)


def test_final_sinc_kernel_is_sinc_or_pulse(golden):
  rows = golden["kernel_params"]
  row = rows[rows[:, 0] == kernels.SINC][0]
  params = _params(row)
  np.testing.assert_allclose(kernels.make_final_sinc_kernel(params),
                             golden["kernels"][np.flatnonzero(rows[:, 0] == kernels.SINC)[0]],
                             atol=1e-6)
  pulse = dict(params, kernel_size=jnp.int32(1), omega_c=jnp.float32(0.0))
  np.testing.assert_array_equal(kernels.make_final_sinc_kernel(pulse), kernels.pulse_kernel())


def test_bessel_j1_table_is_accurate():
  scipy_special = pytest.importorskip("scipy.special")
  x = np.linspace(-45, 45, 9001).astype(np.float32)
  # float32 table values and their cubic Hermite weights (about 8 roundings, of values up to
  # 0.58): ~5e-7, where closed-form float32 approximations are ~2e-6 off near x = 8.
  utils.assert_close(kernels.bessel_j1(jnp.asarray(x)), scipy_special.j1(x.astype(np.float64)),
                     ops=8, magnitude=0.58, ulps=1)


def test_filter2d_per_sample_and_shared_kernels(golden):
  images = _float(golden["filter_input"])
  ours = filters.filter2d(images, jnp.asarray(golden["filter_kernels"]))
  np.testing.assert_allclose(ours, golden["filter_output"], atol=1e-5)
  # Not point-symmetric: a convolution (flipped kernel) instead of a correlation fails here.
  shared = filters.filter2d(images, jnp.asarray(golden["filter_shared_kernel"]))
  np.testing.assert_allclose(shared, golden["filter_shared_output"], atol=1e-5)


def test_filter2d_on_a_canvas_reflects_at_the_valid_border(golden):
  images = _float(golden["filter_input"])
  canvas = jnp.pad(images, ((0, 0), (0, 11), (0, 5), (0, 0)), constant_values=7.0)
  hw = jnp.array([[37, 45]] * 3, jnp.int32)
  ours = filters.filter2d(canvas, jnp.asarray(golden["filter_kernels"]), hw)[:, :37, :45]
  np.testing.assert_allclose(ours, golden["filter_output"], atol=1e-5)


def test_reflect_index_is_reflect_101_and_periodic():
  index = jnp.arange(-7, 12)
  expected = np.pad(np.arange(4), (7, 8), mode="reflect")  # numpy 'reflect' = reflect-101.
  np.testing.assert_array_equal(filters.reflect_index(index, jnp.int32(4)), expected)
  np.testing.assert_array_equal(filters.reflect_index(index, jnp.int32(1)), 0)


def test_usm_matches_basicsr(golden):
  size = golden["usm_kernel"].shape[0]
  kernel_1d = filters.gaussian_kernel_1d(size)
  np.testing.assert_allclose(np.outer(kernel_1d, kernel_1d), golden["usm_kernel"], atol=1e-8)
  ours = filters.usm_sharp(_float(golden["usm_input"]))
  np.testing.assert_allclose(ours, golden["usm_output"], atol=1e-5)


@pytest.mark.parametrize("mode", resize.MODES)
def test_resize_by_scale_factor_matches_torch(golden, mode):
  images = _float(golden["resize_input"])
  in_hw = jnp.array(images.shape[1:3], jnp.int32)
  fn = jax.jit(lambda img, sf, out_hw, out_canvas: resize.resize(
      img, in_hw, out_hw, jnp.int32(resize.MODES.index(mode)), out_canvas, sf),
               static_argnums=3)
  for i, factor in enumerate(golden["resize_scales"]):
    expected = golden[f"resize_scale_{mode}_{i}"]
    out_hw = resize.output_size(in_hw, jnp.float32(factor))
    assert tuple(np.asarray(out_hw)) == expected.shape[1:3]
    canvas = (96, 96)  # Larger than any output: the rest must stay zero.
    for image, want in zip(images, expected):
      ours = fn(image, jnp.float32(factor), out_hw, canvas)
      h, w = expected.shape[1:3]
      np.testing.assert_allclose(ours[:h, :w], want, atol=1e-5, err_msg=f"{mode} x{factor}")
      assert not np.any(ours[h:]) and not np.any(ours[:, w:])


@pytest.mark.parametrize("mode", resize.MODES)
def test_resize_to_size_matches_torch_from_a_canvas(golden, mode):
  images = _float(golden["resize_input"])
  # The image sits in a larger canvas filled with garbage that must not be read.
  canvas = jnp.pad(images, ((0, 0), (0, 9), (0, 3), (0, 0)), constant_values=5.0)
  in_hw = jnp.array(images.shape[1:3], jnp.int32)
  for j, size in enumerate(golden["resize_sizes"]):
    expected = golden[f"resize_size_{mode}_{j}"]
    out_hw = jnp.asarray(size, jnp.int32)
    for image, want in zip(canvas, expected):
      ours = resize.resize(image, in_hw, out_hw, jnp.int32(resize.MODES.index(mode)),
                           (128, 144))
      np.testing.assert_allclose(ours[:size[0], :size[1]], want, atol=1e-5,
                                 err_msg=f"{mode} -> {tuple(size)}")


def _assert_jpeg_close(ours, theirs):
  diff = np.abs(np.asarray(ours) - theirs)
  assert diff.mean() <= 1e-3, diff.mean()
  assert np.mean(diff <= 1 / 255) >= 0.99, np.mean(diff <= 1 / 255)


def test_jpeg_matches_diffjpeg_per_sample_quality(golden):
  ours = jpeg.jpeg(_float(golden["jpeg_input"]), jnp.asarray(golden["jpeg_quality"]))
  _assert_jpeg_close(ours, golden["jpeg_output"])
  scalar = jpeg.jpeg(_float(golden["jpeg_input"]), jnp.full((5,), 60.0))
  _assert_jpeg_close(scalar, golden["jpeg_scalar_output"])
  # Quality matters: qualities in the wrong order are far off.
  swapped = jpeg.jpeg(_float(golden["jpeg_input"]), jnp.asarray(golden["jpeg_quality"][::-1]))
  assert np.abs(np.asarray(swapped) - golden["jpeg_output"]).mean() > 3e-3


def test_jpeg_of_odd_size_and_on_a_canvas(golden):
  images = _float(golden["jpeg_odd_input"])
  quality = jnp.asarray(golden["jpeg_odd_quality"])
  _assert_jpeg_close(jpeg.jpeg(images, quality), golden["jpeg_odd_output"])
  canvas = jnp.pad(images, ((0, 0), (0, 14), (0, 10), (0, 0)), constant_values=0.6)
  hw = jnp.array([[50, 70]] * 2, jnp.int32)
  _assert_jpeg_close(jpeg.jpeg(canvas, quality, hw)[:, :50, :70], golden["jpeg_odd_output"])


def test_gaussian_noise_given_the_same_draws(golden):
  images = _float(golden["gauss_input"])
  gray_draw = jnp.broadcast_to(jnp.asarray(golden["gauss_gray_draw"])[None, ..., None],
                               images.shape[:3] + (1,))
  added = noise.gaussian_noise(images, jnp.asarray(golden["gauss_sigma"]),
                               jnp.asarray(golden["gauss_gray"]),
                               jnp.asarray(golden["gauss_color_draw"]), gray_draw)
  np.testing.assert_allclose(jnp.clip(images + added, 0, 1), golden["gauss_output"], atol=1e-5)


@pytest.mark.parametrize("prefix,image_key", [("poisson", "poisson_input"),
                                              ("poisson_offset", "poisson_offset_input")])
def test_poisson_noise_given_the_same_counts(golden, prefix, image_key):
  images = jnp.asarray(golden[image_key], jnp.float32)
  if golden[image_key].dtype == np.uint8:
    images = images / 255.0
  color, gray_level = noise.quantize(images), noise.quantize(noise.to_gray(images))
  np.testing.assert_array_equal(noise.poisson_vals(color), golden[f"{prefix}_color_vals"])
  np.testing.assert_array_equal(noise.poisson_vals(gray_level), golden[f"{prefix}_gray_vals"])
  color_noise = noise.poisson_noise(color, golden[f"{prefix}_color_vals"],
                                    jnp.asarray(golden[f"{prefix}_color_counts"]))
  gray_noise = noise.poisson_noise(gray_level, golden[f"{prefix}_gray_vals"],
                                   jnp.asarray(golden[f"{prefix}_gray_counts"]))
  gray = jnp.asarray(golden["poisson_gray"])[:, None, None, None]
  scale = jnp.asarray(golden["poisson_scale"])[:, None, None, None]
  out = jnp.clip(images + (color_noise * (1 - gray) + gray_noise * gray) * scale, 0, 1)
  np.testing.assert_allclose(out, golden[f"{prefix}_output"], atol=1e-5)


def test_gray_is_torchvision_formula(golden):
  np.testing.assert_allclose(noise.to_gray(_float(golden["gray_input"])), golden["gray_output"],
                             atol=1e-6)


def test_poisson_vals_count_only_the_valid_region():
  inside = jnp.arange(60, dtype=jnp.float32).reshape(4, 5, 3) / 255.0  # 60 distinct levels.
  image = jnp.zeros((1, 8, 8, 3)).at[0, :4, :5].set(inside)
  image = image.at[0, 6:, :5].set(jnp.arange(100, 130, dtype=jnp.float32).reshape(2, 5, 3) / 255)
  mask = jnp.zeros((1, 8, 8, 1)).at[0, :4, :5].set(1.0)
  assert float(noise.poisson_vals(image, mask)[0]) == 64.0
  assert float(noise.poisson_vals(image)[0]) == 128.0  # 90 levels when the outside counts.


def test_poisson_counts_have_poisson_statistics():
  images = jnp.full((2, 64, 64, 3), 100 / 255.0)
  keys = jax.random.split(jax.random.key(3), 2)
  out = np.asarray(noise.add_poisson_noise(images, keys, jnp.ones(2), jnp.zeros(2)))
  # One level, so vals = 1: out = clip(counts), counts ~ Poisson(100 / 255).
  assert set(np.unique(out)) <= {0.0, 1.0}
  assert abs(np.mean(out == 0.0) - np.exp(-100 / 255.0)) < 0.02


@pytest.mark.parametrize("level,vals", [(1, 4.0), (40, 64.0), (255, 256.0)])
def test_inverse_cdf_poisson_counts_follow_poisson(level, vals):
  scipy_stats = pytest.importorskip("scipy.stats")
  n = 100_000
  u = jax.random.uniform(jax.random.key(level), (n,))
  table = noise.poisson_cdf_table(jnp.float32(vals))
  counts = np.asarray(noise.poisson_from_uniform(jnp.full((n,), level, jnp.int32), u, table))
  rate = level * vals / 255
  assert np.all(counts == np.round(counts))
  for x in np.unique(np.round(rate + np.array([-2, -1, 0, 1, 2]) * np.sqrt(rate))):
    if x >= 0:
      p = scipy_stats.poisson.cdf(x, rate)
      assert abs(np.mean(counts <= x) - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1e-4, x
