"""The degradation pipeline: the sampled distribution equals the configured one (>= 10^4 draws,
within 3 sigma), parameters stay in their ranges, and the output is a pure function of the keys
(same batch on 1 and 2 devices)."""

import math
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import config_base
from jaxsr.degradations import config as degradation_config
from jaxsr.degradations import kernels
from jaxsr.degradations import pipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_DRAWS = 20_000
CROP, SCALE = 64, 4  # Small images: fast compiles; the draws do not depend on the size.


def _keys(n, seed=0):
  return jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(jnp.arange(n))


def _draw(d, n=NUM_DRAWS, seed=0):
  degrader = pipeline.make_degrader(d, CROP, SCALE)
  params = jax.jit(degrader.sample)(_keys(n, seed))
  return jax.tree.map(np.asarray, {stage: {k: v for k, v in p.items() if k != "key"}
                                   for stage, p in params.items()})


def assert_frequencies(values, probs, what):
  """Frequency of each value i within 3 sigma of probs[i] (binomial standard deviation)."""
  n = len(values)
  for i, p in enumerate(probs):
    freq = np.mean(values == i)
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(freq - p) <= 3 * sigma + 1e-12, f"{what}[{i}]: {freq:.4f} vs {p} (3 sigma {3 * sigma:.4f})"


def _kernel_type_probs(kernel_prob, sinc_prob):
  return [(1 - sinc_prob) * p for p in kernel_prob] + [sinc_prob]


@pytest.fixture(scope="module")
def default_draws():
  return _draw(degradation_config.default_config())


def test_kernel_types_follow_the_configured_probabilities(default_draws):
  d = degradation_config.default_config()
  for stage, suffix in (("blur1", ""), ("blur2", "2")):
    assert_frequencies(default_draws[stage]["kernel_type"],
                       _kernel_type_probs(d["kernel_prob" + suffix], d["sinc_prob" + suffix]),
                       f"{stage} kernel type")
  sizes = default_draws["blur1"]["kernel_size"]
  assert_frequencies((sizes - 7) // 2, [1 / 8] * 8, "kernel size")
  assert np.all(sizes % 2 == 1)


def test_resize_noise_and_final_choices_follow_the_config(default_draws):
  d = degradation_config.default_config()
  assert_frequencies(default_draws["resize1"]["direction"], d.resize_prob, "resize1 direction")
  assert_frequencies(default_draws["resize2"]["direction"], d.resize_prob2, "resize2 direction")
  for stage in ("resize1", "resize2"):
    assert_frequencies(default_draws[stage]["mode"], [1 / 3] * 3, f"{stage} mode")
  for stage, suffix in (("noise1", ""), ("noise2", "2")):
    gaussian = default_draws[stage]["gaussian"].astype(int)
    assert_frequencies(1 - gaussian, [d["gaussian_noise_prob" + suffix]], f"{stage} gaussian")
    assert_frequencies(1 - default_draws[stage]["gray"].astype(int),
                       [d["gray_noise_prob" + suffix]], f"{stage} gray")
  assert_frequencies(1 - default_draws["blur2"]["applied"].astype(int), [d.second_blur_prob],
                     "second blur")
  final = default_draws["final"]
  assert_frequencies(1 - (final["sinc_kernel_size"] > 1).astype(int), [d.final_sinc_prob],
                     "final sinc")
  assert_frequencies(final["jpeg_first"].astype(int), [0.5, 0.5], "final order")


def test_a_wrong_probability_breaks_the_frequency_check(default_draws):
  d = degradation_config.default_config()
  skewed = degradation_config.default_config()
  skewed.resize_prob = (0.25, 0.65, 0.1)  # A 5-point shift of two probabilities.
  skewed.kernel_prob = (0.40, 0.30, 0.12, 0.03, 0.12, 0.03)
  draws = _draw(skewed, seed=1)
  with pytest.raises(AssertionError, match="resize1 direction"):
    assert_frequencies(draws["resize1"]["direction"], d.resize_prob, "resize1 direction")
  with pytest.raises(AssertionError, match="kernel type"):
    assert_frequencies(draws["blur1"]["kernel_type"],
                       _kernel_type_probs(d.kernel_prob, d.sinc_prob), "kernel type")
  assert_frequencies(draws["resize1"]["direction"], skewed.resize_prob, "skewed direction")


@pytest.mark.exact("isotropic kernels copy sigma_x into sigma_y")
def test_parameters_stay_in_their_ranges(default_draws):
  d = degradation_config.default_config()
  for stage, suffix in (("blur1", ""), ("blur2", "2")):
    p = default_draws[stage]
    gauss = p["kernel_type"] != kernels.SINC
    lo, hi = d["blur_sigma" + suffix]
    assert np.all((p["sigma_x"][gauss] >= lo) & (p["sigma_x"][gauss] <= hi))
    aniso = gauss & (p["kernel_type"] % 2 == 1)
    iso = gauss & (p["kernel_type"] % 2 == 0)
    assert np.all((p["sigma_y"][aniso] >= lo) & (p["sigma_y"][aniso] <= hi))
    np.testing.assert_array_equal(p["sigma_y"][iso], p["sigma_x"][iso])
    assert np.all(p["theta"][iso] == 0) and np.all(np.abs(p["theta"][aniso]) <= math.pi)
    assert np.std(p["theta"][aniso]) > 1.5  # Spread over (-pi, pi), not a constant.
    generalized = np.isin(p["kernel_type"], (2, 3))
    plateau = np.isin(p["kernel_type"], (4, 5))
    bg, bp = d["betag_range" + suffix], d["betap_range" + suffix]
    assert np.all((p["beta"][generalized] >= bg[0]) & (p["beta"][generalized] <= bg[1]))
    assert np.all((p["beta"][plateau] >= bp[0]) & (p["beta"][plateau] <= bp[1]))
    # basicsr: beta below 1 or above 1 with probability 1/2 each.
    assert abs(np.mean(p["beta"][generalized] < 1) - 0.5) < 0.06
    sinc = ~gauss
    small = sinc & (p["kernel_size"] < 13)
    assert np.all(p["omega_c"][small] >= math.pi / 3 - 1e-6)
    assert np.all((p["omega_c"][sinc] >= math.pi / 5 - 1e-6) & (p["omega_c"][sinc] <= math.pi))
    assert np.min(p["omega_c"][sinc & ~small]) < math.pi / 3  # The wider range is used.
  for stage, suffix in (("resize1", ""), ("resize2", "2")):
    p, (lo, hi) = default_draws[stage], d["resize_range" + suffix]
    up, down, keep = (p["direction"] == i for i in (pipeline.UP, pipeline.DOWN, pipeline.KEEP))
    assert np.all((p["factor"][up] >= 1) & (p["factor"][up] <= hi))
    assert np.all((p["factor"][down] >= lo) & (p["factor"][down] <= 1))
    assert np.all(p["factor"][keep] == 1)
  for stage, suffix in (("noise1", ""), ("noise2", "2")):
    p = default_draws[stage]
    lo, hi = d["noise_range" + suffix]
    assert np.all((p["sigma"] >= lo) & (p["sigma"] <= hi))
    lo, hi = d["poisson_scale_range" + suffix]
    assert np.all((p["poisson_scale"] >= lo) & (p["poisson_scale"] <= hi))
  for quality, (lo, hi) in ((default_draws["jpeg1"]["quality"], d.jpeg_range),
                            (default_draws["final"]["quality"], d.jpeg_range2)):
    assert np.all((quality >= lo) & (quality <= hi)) and np.ptp(quality) > 0.9 * (hi - lo)


def _images(n, size, seed=0):
  rng = np.random.default_rng(seed)
  base = rng.uniform(size=(n, size // 8, size // 8, 3)).astype(np.float32)
  return jnp.asarray(np.repeat(np.repeat(base, 8, axis=1), 8, axis=2))


@pytest.fixture(scope="module")
def degraded():
  degrader = pipeline.make_degrader(degradation_config.default_config(), CROP, SCALE)
  fn = jax.jit(lambda keys, hr: degrader.apply(degrader.sample(keys), hr))
  hr = _images(6, CROP)
  return fn, hr, np.asarray(fn(_keys(6), hr))


@pytest.mark.exact("the same compiled program on the same keys gives the same batch")
@pytest.mark.numerics
def test_output_is_lr_on_8bit_levels_and_a_function_of_the_keys(degraded):
  # Imported here: the 2-device process imports this module, and needs no orbax (tests.utils).
  from tests import utils  # pylint: disable=g-import-not-at-top
  fn, hr, lr = degraded
  assert lr.shape == (6, CROP // SCALE, CROP // SCALE, 3)
  assert lr.min() >= 0 and lr.max() <= 1
  # k / 255 in float32, times 255: one rounding of values up to 255.
  utils.assert_close(lr * 255, np.round(lr * 255), magnitude=255)
  np.testing.assert_array_equal(np.asarray(fn(_keys(6), hr)), lr)
  other = np.asarray(fn(_keys(6, seed=1), hr))
  assert np.abs(other - lr).mean() > 1e-3
  # Sample b depends on keys[b] only: reordering the batch reorders the output. XLA:CPU may
  # round a sample differently at another batch position (see jaxsr/lpips.py), so a value next
  # to a rounding tie may land one level either side (rounding steps: two blurs and a sinc
  # filter of up to 21x21 taps, the resizes, two JPEGs' DCTs: under 2000).
  order = np.array([3, 1, 5, 0, 2, 4])
  utils.assert_levels_close(np.asarray(fn(_keys(6)[order], hr[order])) * 255, lr[order] * 255,
                            255 * utils.tolerance(ops=2000)["atol"])


def test_degradations_are_more_than_a_downscale(degraded):
  _, hr, lr = degraded
  n, size = lr.shape[:2]
  mean = np.asarray(hr).reshape(n, size, SCALE, size, SCALE, 3).mean((2, 4))
  assert np.abs(lr - mean).mean() > 0.01


def pair_config():
  """A real-world config whose pairs (degradations, crop, pool of two batches) are cheap."""
  config = config_base.realworld_config()
  config.scale, config.batch_size = SCALE, 6
  config.data.crop_pad_size, config.data.gt_size = CROP, 32
  config.degradation.queue_size = 12
  return config


def run_pairs(in_shardings=None, out_shardings=None):
  """LR and HR of 3 steps of `pairs.make_pair_fn(pair_config())` (fill, fill, exchange),
  flattened into one array."""
  from jaxsr.degradations import pairs  # pylint: disable=g-import-not-at-top
  config = pair_config()
  make = pairs.make_pair_fn(config)
  fn = jax.jit(make) if in_shardings is None else jax.jit(
      make, in_shardings=in_shardings, out_shardings=out_shardings)
  pool = pairs.init_pool(12, 32, SCALE)
  hr = np.round(np.asarray(_images(6, CROP)) * 255).astype(np.uint8)
  out = []
  for step in range(3):
    pool, batch = fn(pool, hr, jnp.int32(step))
    out += [np.asarray(batch["lr"]).ravel(), np.asarray(batch["hr"]).ravel()]
  return np.concatenate(out)


TWO_DEVICE_SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
import jax, jax.numpy as jnp, numpy as np
from jaxsr import sharding
from jaxsr.degradations import config as degradation_config, pipeline
from tests.test_degradation_pipeline import _keys, _images, run_pairs, CROP, SCALE
assert jax.device_count() == 2
mesh = sharding.create_mesh()
split, rep = sharding.batch_sharding(mesh), sharding.replicated(mesh)
degrader = pipeline.make_degrader(degradation_config.default_config(), CROP, SCALE)
fn = jax.jit(lambda keys, hr: degrader.apply(degrader.sample(keys), hr),
             in_shardings=(split, split), out_shardings=split)
lr = fn(_keys(6), _images(6, CROP))
assert len(lr.sharding.device_set) == 2
np.save({out!r}, np.asarray(lr))
np.save({pairs_out!r}, run_pairs((rep, split, rep), (rep, split)))
"""


@pytest.mark.exact("a run gives the same batches on 1 or N devices (README)")
def test_same_batch_and_pairs_on_two_devices(degraded, tmp_path):
  _, _, lr = degraded
  out, pairs_out = str(tmp_path / "lr.npy"), str(tmp_path / "pairs.npy")
  # This process's XLA flags too (e.g. --xla_cpu_max_isa): the same code on both sides.
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=" ".join(
      [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=2"]).strip())
  # Imported here: the 2-device process imports this module, and needs no orbax (tests.utils).
  from tests import utils  # pylint: disable=g-import-not-at-top
  utils.run_process([sys.executable, "-c", TWO_DEVICE_SCRIPT.format(
      repo=REPO, out=out, pairs_out=pairs_out)], check=True, env=env, timeout=utils.LONG)
  # 8-bit levels: a rounding difference would show as a whole level.
  np.testing.assert_array_equal(np.load(out), lr)
  # Degradations, per-sample crops and the pool (filled, then exchanging) agree too.
  np.testing.assert_array_equal(np.load(pairs_out), run_pairs())


def test_realworld_config_validation_names_every_bad_value():
  config = config_base.realworld_config()
  config.degradation.resize_prob = (0.5, 0.6, 0.1)
  config.degradation.kernel_list = ("iso", "gaussian")
  config.degradation.jpeg_range = (95.0, 30.0)
  config.degradation.queue_size = 100
  config.data.crop_pad_size = 402
  with pytest.raises(ValueError) as e:
    config_base.validate(config)
  for text in ("resize_prob=(0.5, 0.6, 0.1) must be non-negative and sum to 1",
               "kernel_list=('iso', 'gaussian'): unknown ['gaussian']",
               "jpeg_range=(95.0, 30.0)", "queue_size=100 is not a multiple of batch_size=12",
               "crop_pad_size=402 is not a multiple of scale=4"):
    assert text in str(e.value)
  config_base.validate(config_base.realworld_config())
  config_base.validate(config_base.realworld_config(gan=True))
  # A shorter kernel list alone (found by tests/test_config_fuzz.py): the message names the
  # list as well as the probabilities that no longer match it.
  config = config_base.realworld_config()
  config.degradation.kernel_list2 = ("iso",)
  with pytest.raises(ValueError, match=r"kernel_prob2=.* must list 1 probabilities, one per "
                                       r"entry of degradation\.kernel_list2"):
    config_base.validate(config)
