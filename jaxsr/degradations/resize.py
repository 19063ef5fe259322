"""PyTorch `F.interpolate` (area, bilinear, bicubic; align_corners=False, no antialias) as
resampling matrices over fixed-size canvases.

An image of valid size (h, w) sits in the top-left corner of a static [H, W] canvas. Resizing it
to (h', w') inside an [H', W'] canvas is `A_h X A_w^T`, where `A_h` is [H', H]: row i < h' holds
the weights output row i gives to input rows (all < h: PyTorch clamps indices to the image, so
nothing outside the valid region is read), rows i >= h' are zero. Sizes, scale and mode may be
traced, so one compiled function resizes every sample of a batch by its own factor and mode —
the reason for matrices: XLA needs static shapes, and a matrix from a traced size is cheap.

Coordinate maps are PyTorch's (`aten/src/ATen/native/UpSample.h`): with `scale_factor` given
(and recompute_scale_factor unset, as Real-ESRGAN calls it) bilinear/bicubic map output pixel i
to input `(i + 0.5) / scale_factor - 0.5`, otherwise `(i + 0.5) * in / out - 0.5`; bilinear clamps
negative coordinates to 0; bicubic uses the cubic convolution kernel with A = -0.75 and
clamped indices; area is `adaptive_avg_pool2d` (rows floor(i in / out) .. ceil((i+1) in / out)).
"""

import jax
import jax.numpy as jnp

MODES = ("area", "bilinear", "bicubic")  # Mode ids are indices into this tuple.
_A = -0.75  # PyTorch's bicubic coefficient.
_HIGHEST = jax.lax.Precision.HIGHEST


def output_size(in_size: jnp.ndarray, scale_factor: jnp.ndarray) -> jnp.ndarray:
  """floor(in_size * scale_factor), the size `F.interpolate(scale_factor=...)` produces."""
  return jnp.floor(in_size.astype(jnp.float32) * scale_factor).astype(jnp.int32)


def _one_hot_rows(index: jnp.ndarray, weight: jnp.ndarray, in_canvas: int) -> jnp.ndarray:
  """Sum over taps of weight * one_hot(index): [out, taps] -> [out, in_canvas]."""
  cols = jnp.arange(in_canvas)
  return jnp.sum(weight[..., None] * (index[..., None] == cols), axis=-2)


def _cubic_weights(t: jnp.ndarray) -> jnp.ndarray:
  """[..., 4] cubic-convolution weights of the taps at offsets -1, 0, 1, 2 for fraction t."""
  def near(x):  # |x| <= 1
    return ((_A + 2) * x - (_A + 3)) * x * x + 1
  def far(x):  # 1 < |x| < 2
    return ((_A * x - 5 * _A) * x + 8 * _A) * x - 4 * _A
  return jnp.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def resize_matrix(in_size: jnp.ndarray, out_size: jnp.ndarray, mode: jnp.ndarray,
                  in_canvas: int, out_canvas: int,
                  scale_factor: jnp.ndarray = None) -> jnp.ndarray:
  """[out_canvas, in_canvas] float32 matrix resizing a length-`in_size` signal to `out_size`.

  Args:
    in_size, out_size: int32 scalars, valid lengths (<= the canvases).
    mode: int32 scalar, index into MODES.
    in_canvas, out_canvas: static canvas lengths.
    scale_factor: the `scale_factor` passed to F.interpolate, if any (bilinear / bicubic then
      use 1 / scale_factor as the coordinate scale); None: the `size=` form (in / out).
  """
  in_f = in_size.astype(jnp.float32)
  out_f = out_size.astype(jnp.float32)
  coord_scale = in_f / out_f if scale_factor is None else 1.0 / scale_factor
  i = jnp.arange(out_canvas)
  center = (i.astype(jnp.float32) + 0.5) * coord_scale - 0.5
  last = in_size - 1

  # Bilinear: negative coordinates clamp to 0; the right tap clamps to the last pixel.
  src = jnp.maximum(center, 0.0)
  left = jnp.floor(src).astype(jnp.int32)
  frac = src - left
  right = jnp.minimum(left + 1, last)
  bilinear = _one_hot_rows(jnp.stack([jnp.minimum(left, last), right], -1),
                           jnp.stack([1 - frac, frac], -1), in_canvas)

  # Bicubic: 4 taps around floor(center), indices clamped to the image.
  base = jnp.floor(center).astype(jnp.int32)
  taps = jnp.clip(base[:, None] + jnp.arange(-1, 3)[None, :], 0, last)
  bicubic = _one_hot_rows(taps, _cubic_weights(center - base), in_canvas)

  # Area: adaptive average pooling (integer start / end as PyTorch computes them).
  start = (i * in_size) // out_size
  end = -((-(i + 1) * in_size) // out_size)  # ceil
  cols = jnp.arange(in_canvas)[None, :]
  inside = (cols >= start[:, None]) & (cols < end[:, None])
  area = inside / jnp.maximum(end - start, 1)[:, None].astype(jnp.float32)

  matrix = jnp.stack([area, bilinear, bicubic])[mode]
  return jnp.where((i < out_size)[:, None], matrix, 0.0)


def resize(image: jnp.ndarray, in_hw: jnp.ndarray, out_hw: jnp.ndarray, mode: jnp.ndarray,
           out_canvas: tuple, scale_factor: jnp.ndarray = None) -> jnp.ndarray:
  """One image's resize on canvases.

  Args:
    image: [H, W, C] canvas; the valid image is `image[:in_hw[0], :in_hw[1]]`.
    in_hw, out_hw: int32 [2] valid sizes before / after.
    mode: int32 scalar, index into MODES.
    out_canvas: static (H', W') of the result's canvas (>= out_hw).
    scale_factor: float32 scalar, F.interpolate's scale_factor (same for both axes), or None.

  Returns:
    [H', W', C] canvas, zero outside `out_hw`.
  """
  rows = resize_matrix(in_hw[0], out_hw[0], mode, image.shape[0], out_canvas[0], scale_factor)
  cols = resize_matrix(in_hw[1], out_hw[1], mode, image.shape[1], out_canvas[1], scale_factor)
  out = jnp.einsum("oh,hwc->owc", rows, image, precision=_HIGHEST)
  return jnp.einsum("pw,owc->opc", cols, out, precision=_HIGHEST)
