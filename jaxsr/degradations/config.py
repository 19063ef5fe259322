"""The degradation config (`config.degradation`) and its validation.

Defaults are Real-ESRGAN's `options/train_realesrgan_x4plus.yml` (`realesrgan` 0.3.0) and its
`RealESRGANDataset` (kernel sizes 7..21, kernel padded to 21). Field names follow that file, so a
Real-ESRGAN user finds each option under the name they know; `...2` is the second degradation.
`errors` names every bad value (`config_base.validate` reports them before anything compiles).
"""

import math
from typing import List

import ml_collections

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
                "plateau_aniso")
RESIZE_MODES = ("area", "bilinear", "bicubic")
ORDERS = ("realesrgan",)  # Stage lists in `pipeline.ORDERS`.
MAX_KERNEL_SIZE = 21  # Every kernel is zero-padded to this size (Real-ESRGAN's 21).


def default_config() -> ml_collections.ConfigDict:
  """Real-ESRGAN x4plus degradations (first stage, second stage, final stage, sharpening)."""
  d = ml_collections.ConfigDict()
  d.order = "realesrgan"  # The stage list (`pipeline.ORDERS`).
  # Blur kernels: sizes drawn uniformly from kernel_sizes (odd, <= 21), zero-padded to 21.
  d.kernel_sizes = tuple(range(7, 22, 2))
  d.kernel_list = KERNEL_TYPES
  d.kernel_prob = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
  d.sinc_prob = 0.1  # A circular low-pass (sinc) kernel instead of kernel_list's.
  d.blur_sigma = (0.2, 3.0)
  d.betag_range = (0.5, 4.0)  # Generalized Gaussian shape.
  d.betap_range = (1.0, 2.0)  # Plateau shape.
  d.kernel_list2 = KERNEL_TYPES
  d.kernel_prob2 = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
  d.sinc_prob2 = 0.1
  d.blur_sigma2 = (0.2, 1.5)
  d.betag_range2 = (0.5, 4.0)
  d.betap_range2 = (1.0, 2.0)
  d.final_sinc_prob = 0.8
  # First degradation: blur, resize, noise, JPEG.
  d.resize_prob = (0.2, 0.7, 0.1)  # up, down, keep
  d.resize_range = (0.15, 1.5)
  d.resize_modes = RESIZE_MODES  # Drawn uniformly (PyTorch F.interpolate, no antialias).
  d.gaussian_noise_prob = 0.5  # Else Poisson.
  d.noise_range = (1.0, 30.0)  # Gaussian sigma, in 8-bit levels.
  d.poisson_scale_range = (0.05, 3.0)
  d.gray_noise_prob = 0.4
  d.jpeg_range = (30.0, 95.0)
  # Second degradation: blur with second_blur_prob, resize (relative to HR / scale), noise.
  d.second_blur_prob = 0.8
  d.resize_prob2 = (0.3, 0.4, 0.3)
  d.resize_range2 = (0.3, 1.2)
  d.gaussian_noise_prob2 = 0.5
  d.noise_range2 = (1.0, 25.0)
  d.poisson_scale_range2 = (0.05, 2.5)
  d.gray_noise_prob2 = 0.4
  # Final stage: [resize to HR / scale + final sinc] and JPEG, in random order (p = 0.5).
  d.jpeg_range2 = (30.0, 95.0)
  # Unsharp masking of the GT (BasicSR USMSharp) and which losses use the sharpened GT.
  d.usm_weight = 0.5
  d.usm_radius = 50
  d.usm_threshold = 10.0
  d.l1_gt_usm = True
  d.percep_gt_usm = True
  d.gan_gt_usm = False
  # Training-pair pool shuffled across batches (Real-ESRGAN queue_size); 0 disables it.
  # One pool for the global batch (Real-ESRGAN keeps one per GPU): a multiple of batch_size.
  d.queue_size = 180
  return d


def _is_pair(value) -> bool:
  return isinstance(value, (tuple, list)) and len(value) == 2


def _range_errors(d: ml_collections.ConfigDict, name: str, low: float, high: float,
                  around_one: bool = False) -> List[str]:
  value = d[name]
  if not _is_pair(value):
    return [f"degradation.{name}={value} must be a pair (min, max)"]
  lo, hi = float(value[0]), float(value[1])
  if not low <= lo <= hi <= high:
    return [f"degradation.{name}={tuple(value)} must satisfy {low} <= min <= max <= {high}"]
  if around_one and not lo <= 1.0 <= hi:
    return [f"degradation.{name}={tuple(value)} must contain 1 (the draw is below or above 1 "
            "with probability 0.5 each)"]
  return []


def _prob_errors(d: ml_collections.ConfigDict, name: str) -> List[str]:
  value = d[name]
  if isinstance(value, (tuple, list)) or not 0.0 <= float(value) <= 1.0:
    return [f"degradation.{name}={value} must be a probability in [0, 1]"]
  return []


def _distribution_errors(d: ml_collections.ConfigDict, name: str, size: int,
                         per: str = "") -> List[str]:
  """Errors of `d[name]`, a distribution over `size` choices (`per`: the field listing them)."""
  value = d[name]
  if not isinstance(value, (tuple, list)) or len(value) != size:
    each = f", one per entry of degradation.{per}" if per else ""
    return [f"degradation.{name}={value} must list {size} probabilities{each}"]
  if any(float(p) < 0 for p in value) or not math.isclose(sum(value), 1.0, abs_tol=1e-6):
    return [f"degradation.{name}={tuple(value)} must be non-negative and sum to 1"]
  return []


def errors(d: ml_collections.ConfigDict, batch_size: int = 0) -> List[str]:
  """One message per bad value of the degradation config `d` (unknown keys are found by
  `config_base.validate`).

  batch_size: the run's global batch (when given), which queue_size must be a multiple of.
  """
  found = []
  if d.order not in ORDERS:
    found.append(f"degradation.order='{d.order}' is not one of {ORDERS}")
  sizes = tuple(d.kernel_sizes)
  if not sizes or any(int(k) % 2 == 0 or not 3 <= int(k) <= MAX_KERNEL_SIZE for k in sizes):
    found.append(f"degradation.kernel_sizes={sizes} must be odd sizes in [3, "
                  f"{MAX_KERNEL_SIZE}]")
  for suffix in ("", "2"):
    kernels = tuple(d["kernel_list" + suffix])
    bad = [k for k in kernels if k not in KERNEL_TYPES]
    if bad or not kernels:
      found.append(f"degradation.kernel_list{suffix}={kernels}: unknown {bad}; kernel types are "
                    f"{KERNEL_TYPES}")
    found += _distribution_errors(d, "kernel_prob" + suffix, len(kernels),
                                  per="kernel_list" + suffix)
    found += _prob_errors(d, "sinc_prob" + suffix)
    found += _range_errors(d, "blur_sigma" + suffix, 1e-3, 100.0)
    found += _range_errors(d, "betag_range" + suffix, 1e-2, 100.0, around_one=True)
    found += _range_errors(d, "betap_range" + suffix, 1e-2, 100.0, around_one=True)
    found += _distribution_errors(d, "resize_prob" + suffix, 3)
    found += _range_errors(d, "resize_range" + suffix, 1e-2, 4.0, around_one=True)
    found += _prob_errors(d, "gaussian_noise_prob" + suffix)
    found += _prob_errors(d, "gray_noise_prob" + suffix)
    found += _range_errors(d, "noise_range" + suffix, 0.0, 255.0)
    found += _range_errors(d, "poisson_scale_range" + suffix, 0.0, 100.0)
    found += _range_errors(d, "jpeg_range" + suffix, 1.0, 100.0)
  modes = tuple(d.resize_modes)
  if not modes or any(m not in RESIZE_MODES for m in modes):
    found.append(f"degradation.resize_modes={modes} must be a non-empty subset of "
                  f"{RESIZE_MODES}")
  for name in ("final_sinc_prob", "second_blur_prob"):
    found += _prob_errors(d, name)
  if not 0.0 <= d.usm_weight <= 10.0:
    found.append(f"degradation.usm_weight={d.usm_weight} must be in [0, 10]")
  if not 8 <= d.usm_radius <= 200:  # OpenCV's small fixed kernels (size <= 7) are not made.
    found.append(f"degradation.usm_radius={d.usm_radius} must be in [8, 200]")
  if d.queue_size < 0:
    found.append(f"degradation.queue_size={d.queue_size} must be >= 0 (0: no pool)")
  elif batch_size and d.queue_size % batch_size:
    found.append(f"degradation.queue_size={d.queue_size} is not a multiple of batch_size="
                  f"{batch_size} (Real-ESRGAN's pool takes whole batches)")
  return found
