"""Real-ESRGAN's second-order degradation as a list of stages, per sample, jit-compiled.

HR [B, P, P, 3] -> USM-sharpened HR -> stages -> LR [B, P/s, P/s, 3] on 8-bit levels. The
stages of order `realesrgan` (`RealESRNetModel.feed_data`):
  blur1 -> resize1 -> noise1 -> jpeg1 -> blur2 (p = second_blur_prob) -> resize2 -> noise2 ->
  final: [resize to P/s + final sinc, then JPEG] or [JPEG, then resize + sinc] (p = 1/2 each).
A stage is a pair of pure functions (`Stage`): `sample(key) -> params` draws one sample's
parameters, `apply(params, canvas) -> canvas` applies a batch of them. Another order (e.g.
BSRGAN's shuffled one) is another list of stages in `ORDERS`.

Static shapes for random sizes (the design choice): random resize factors make each image's
size random, but XLA compiles static shapes. Every image therefore lives on a fixed canvas large
enough for its stage's largest size (`Canvas`: pixels + valid size per sample), and each op
honours the valid region: resizes are matrices built from the traced sizes (`resize.py`), the
blur reflects at the valid border (`filters.py`), JPEG zero-pads beyond it as DiffJPEG pads to
16, and the Poisson level count only sees it. So every factor of the continuous ranges is
reproduced exactly (no bucketing of scales), and each sample draws its own direction, factor
and mode, Gaussian-or-Poisson choice, second-blur choice and final order, where the reference
draws these once per batch: more diversity per batch, and the same distribution for one
sample. The price is compute on the largest canvas (1.5 x P after resize1); on an accelerator
that is small, and no compilation ever depends on the draws.

Randomness: sample b of a batch is keyed by `keys[b]`; the train loop derives it from
(seed, step, global index), so a batch is the same on any number of devices and after resume.
"""

import math
from typing import Callable, Dict, List, NamedTuple, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from jaxsr.degradations import filters
from jaxsr.degradations import jpeg as jpeg_lib
from jaxsr.degradations import kernels
from jaxsr.degradations import noise
from jaxsr.degradations import resize as resize_lib

UP, DOWN, KEEP = 0, 1, 2  # Resize directions (the order of resize_prob).
Params = Dict[str, jnp.ndarray]


class Canvas(NamedTuple):
  """A batch of images of per-sample sizes: `pixels[b, :hw[b, 0], :hw[b, 1]]` is image b.

  pixels: [B, H, W, 3] float32 (zero or stale outside the valid region); hw: int32 [B, 2].
  """
  pixels: jnp.ndarray
  hw: jnp.ndarray


class Stage(NamedTuple):
  """One degradation step: `sample(key) -> params` (one sample, scalars; a 'key' entry is a
  PRNG key for large draws made in apply), `apply(params [B], canvas) -> canvas`."""
  name: str
  sample: Callable[[jax.Array], Params]
  apply: Callable[[Params, Canvas], Canvas]


def _ceil16(n: float) -> int:
  return int(math.ceil(n / 16.0) * 16)


def _valid_mask(canvas: Canvas) -> jnp.ndarray:
  """[B, H, W, 1] float32, 1 inside each valid region."""
  _, height, width, _ = canvas.pixels.shape
  return filters.valid_mask(canvas.hw, height, width).astype(jnp.float32)


# --- Stages ------------------------------------------------------------------------------------


def blur_stage(name: str, d: ml_collections.ConfigDict, suffix: str = "",
               prob: float = 1.0) -> Stage:
  """Blur with a kernel drawn from the `kernel_list{suffix}` family, with probability `prob`."""

  def sample(key):
    u = jax.random.uniform(key, (kernels.NUM_KERNEL_UNIFORMS + 1,))
    params = kernels.sample_kernel_params(
        u[1:], tuple(d.kernel_sizes), tuple(d["kernel_list" + suffix]),
        tuple(d["kernel_prob" + suffix]), d["sinc_prob" + suffix], tuple(d["blur_sigma" + suffix]),
        tuple(d["betag_range" + suffix]), tuple(d["betap_range" + suffix]))
    params["applied"] = u[0] < prob
    return params

  def apply(params, canvas):
    blurred = filters.filter2d(canvas.pixels, jax.vmap(kernels.make_kernel)(params), canvas.hw)
    return canvas._replace(
        pixels=jnp.where(params["applied"][:, None, None, None], blurred, canvas.pixels))

  return Stage(name, sample, apply)


def _mode_ids(modes) -> jnp.ndarray:
  return jnp.asarray([resize_lib.MODES.index(m) for m in modes], jnp.int32)


def _sample_resize(key, resize_prob, resize_range, modes) -> Params:
  """Direction up / down / keep by resize_prob, factor U(1, max) / U(min, 1) / 1, mode uniform."""
  u = jax.random.uniform(key, (4,))
  direction = kernels.choice_from_uniform(u[0], jnp.arange(3, dtype=jnp.int32), resize_prob)
  factor = jnp.select([direction == UP, direction == DOWN],
                      [kernels.uniform_in(u[1], 1.0, resize_range[1]),
                       kernels.uniform_in(u[2], resize_range[0], 1.0)], 1.0)
  return {"direction": direction, "factor": factor,
          "mode": kernels.choice_from_uniform(u[3], _mode_ids(modes))}


def _resize_canvas(canvas: Canvas, out_hw: jnp.ndarray, mode: jnp.ndarray, out_canvas,
                   scale_factor=None) -> Canvas:
  """Resizes each image to its out_hw [B, 2] on an `out_canvas` (H, W) canvas."""
  # scale_factor [B] or None (an empty pytree: vmap passes it through).
  pixels = jax.vmap(lambda img, hw_in, hw_out, m, sf: resize_lib.resize(
      img, hw_in, hw_out, m, out_canvas, sf))(canvas.pixels, canvas.hw, out_hw, mode,
                                               scale_factor)
  return Canvas(pixels, out_hw)


def resize_by_factor_stage(name: str, d: ml_collections.ConfigDict, out_canvas: int) -> Stage:
  """First-order resize: `F.interpolate(x, scale_factor=f, mode=m)`, f by resize_prob/range."""

  def sample(key):
    return _sample_resize(key, tuple(d.resize_prob), tuple(d.resize_range), tuple(d.resize_modes))

  def apply(params, canvas):
    out_hw = resize_lib.output_size(canvas.hw, params["factor"][:, None])
    return _resize_canvas(canvas, out_hw, params["mode"], (out_canvas, out_canvas),
                          params["factor"])

  return Stage(name, sample, apply)


def resize_to_stage(name: str, d: ml_collections.ConfigDict, base_size: int,
                    out_canvas: int) -> Stage:
  """Second-order resize: `F.interpolate(x, size=int(base_size * f), mode=m)`."""

  def sample(key):
    return _sample_resize(key, tuple(d.resize_prob2), tuple(d.resize_range2),
                          tuple(d.resize_modes))

  def apply(params, canvas):
    size = jnp.floor(base_size * params["factor"]).astype(jnp.int32)
    out_hw = jnp.stack([size, size], axis=-1)
    return _resize_canvas(canvas, out_hw, params["mode"], (out_canvas, out_canvas))

  return Stage(name, sample, apply)


def noise_stage(name: str, d: ml_collections.ConfigDict, suffix: str = "") -> Stage:
  """Gaussian noise (probability gaussian_noise_prob) else Poisson, gray with gray_noise_prob."""
  sigma_range = tuple(d["noise_range" + suffix])
  scale_range = tuple(d["poisson_scale_range" + suffix])

  def sample(key):
    k_params, k_draws = jax.random.split(key)
    u = jax.random.uniform(k_params, (4,))
    return {
        "gaussian": u[0] < d["gaussian_noise_prob" + suffix],
        "sigma": kernels.uniform_in(u[1], *sigma_range),
        "poisson_scale": kernels.uniform_in(u[2], *scale_range),
        "gray": (u[3] < d["gray_noise_prob" + suffix]).astype(jnp.float32),
        "key": k_draws,
    }

  def apply(params, canvas):
    return canvas._replace(pixels=noise.add_noise(
        canvas.pixels, params["key"], params["gaussian"], params["sigma"],
        params["poisson_scale"], params["gray"], _valid_mask(canvas)))

  return Stage(name, sample, apply)


def _jpeg(canvas: Canvas, quality: jnp.ndarray) -> Canvas:
  pixels = jpeg_lib.jpeg(jnp.clip(canvas.pixels, 0.0, 1.0), quality, canvas.hw)
  return canvas._replace(pixels=pixels)


def jpeg_stage(name: str, d: ml_collections.ConfigDict) -> Stage:
  """JPEG (DiffJPEG) at a quality U(jpeg_range), after clamping to [0, 1]."""

  def sample(key):
    return {"quality": jax.random.uniform(key, (), jnp.float32, *tuple(d.jpeg_range))}

  return Stage(name, sample, lambda params, canvas: _jpeg(canvas, params["quality"]))


def final_stage(name: str, d: ml_collections.ConfigDict, lr_size: int) -> Stage:
  """[resize to lr_size + final sinc] and JPEG(jpeg_range2), in an order drawn with p = 1/2."""
  out_canvas = (_ceil16(lr_size),) * 2

  def sample(key):
    u = jax.random.uniform(key, (3 + kernels.NUM_FINAL_SINC_UNIFORMS,))
    params = {"jpeg_first": u[0] < 0.5,
              "mode": kernels.choice_from_uniform(u[1], _mode_ids(d.resize_modes)),
              "quality": kernels.uniform_in(u[2], *tuple(d.jpeg_range2))}
    sinc = kernels.sample_final_sinc_params(u[3:], tuple(d.kernel_sizes), d.final_sinc_prob)
    params.update({"sinc_" + k: v for k, v in sinc.items()})
    return params

  def resize_and_sinc(params, canvas):
    out_hw = jnp.full(canvas.hw.shape, lr_size, jnp.int32)
    canvas = _resize_canvas(canvas, out_hw, params["mode"], out_canvas)
    sinc = {k[len("sinc_"):]: v for k, v in params.items() if k.startswith("sinc_")}
    kernel = jax.vmap(kernels.make_final_sinc_kernel)(sinc)
    return canvas._replace(pixels=filters.filter2d(canvas.pixels, kernel, canvas.hw))

  def apply(params, canvas):
    resize_first = _jpeg(resize_and_sinc(params, canvas), params["quality"])
    jpeg_first = resize_and_sinc(params, _jpeg(canvas, params["quality"]))
    pick = params["jpeg_first"][:, None, None, None]
    return resize_first._replace(pixels=jnp.where(pick, jpeg_first.pixels, resize_first.pixels))

  return Stage(name, sample, apply)


def realesrgan_stages(d: ml_collections.ConfigDict, crop_size: int, scale: int) -> List[Stage]:
  """Real-ESRGAN's order for HR crops of crop_size (P) and LR of P / scale."""
  lr_size = crop_size // scale
  canvas1 = _ceil16(math.floor(crop_size * max(1.0, d.resize_range[1])))
  canvas2 = _ceil16(math.floor(lr_size * max(1.0, d.resize_range2[1])))
  return [
      blur_stage("blur1", d),
      resize_by_factor_stage("resize1", d, canvas1),
      noise_stage("noise1", d),
      jpeg_stage("jpeg1", d),
      blur_stage("blur2", d, suffix="2", prob=d.second_blur_prob),
      resize_to_stage("resize2", d, lr_size, canvas2),
      noise_stage("noise2", d, suffix="2"),
      final_stage("final", d, lr_size),
  ]


ORDERS = {"realesrgan": realesrgan_stages}


# --- The whole pipeline --------------------------------------------------------------------------


class Degrader(NamedTuple):
  """`sample(keys [B]) -> params` and `apply(params, hr [B, P, P, 3] in [0, 1]) -> lr` of a
  degradation config (see `make_degrader`)."""
  sample: Callable
  apply: Callable
  stages: Tuple[Stage, ...]


def make_degrader(d: ml_collections.ConfigDict, crop_size: int, scale: int) -> Degrader:
  """The degradations of config `d` for HR crops of `crop_size` at `scale` (validate first).

  `apply(params, hr)`: HR float32 [B, P, P, 3] in [0, 1] -> LR float32 [B, P/s, P/s, 3] on
  8-bit levels. The first blur sees the USM-sharpened HR, as in Real-ESRGAN.
  """
  if crop_size % scale:
    raise ValueError(f"crop size {crop_size} is not a multiple of scale {scale}")
  stages = tuple(ORDERS[d.order](d, crop_size, scale))
  lr_size = crop_size // scale

  def sample(keys):
    def one(key):
      return {stage.name: stage.sample(jax.random.fold_in(key, i))
              for i, stage in enumerate(stages)}
    return jax.vmap(one)(keys)

  def apply(params, hr):
    sharp = filters.usm_sharp(hr, d.usm_weight, d.usm_radius, d.usm_threshold)
    hw = jnp.full((hr.shape[0], 2), crop_size, jnp.int32)
    canvas = Canvas(sharp, hw)
    for stage in stages:
      canvas = stage.apply(params[stage.name], canvas)
    return noise.quantize(canvas.pixels[:, :lr_size, :lr_size])

  return Degrader(sample, apply, stages)
