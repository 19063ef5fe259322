"""MATLAB-exact bicubic `imresize` in numpy and JAX (BasicSR's `matlab_functions.imresize`).

Resizing along one axis is linear, so each axis is a matrix `[out_size, in_size]`
(`resize_matrix`, float64, cached) built from the shared tap arithmetic of
`jaxsr.ops.bicubic_taps`. An image is resized as `M_h @ image @ M_w^T` per channel, H first
then W, like BasicSR. Shapes are static, so under `jax.jit` the matrices are constants.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.ops import bicubic_taps


@functools.lru_cache(maxsize=128)
def resize_matrix(in_size: int, out_size: int, scale: float,
                  antialiasing: bool = True) -> np.ndarray:
  """Bicubic resize of one axis as a matrix.

  Args:
    in_size: input length.
    out_size: output length, normally `ceil(in_size * scale)`.
    scale: output / input scale factor (e.g. 0.25 to downscale x4).
    antialiasing: widen the kernel when downscaling (MATLAB default).

  Returns:
    Read-only float64 `[out_size, in_size]`; rows sum to 1. Taps mirrored at the borders
    are accumulated into the column of the input pixel they read.
  """
  indices, weights = bicubic_taps.bicubic_taps(
      np, float(in_size), float(out_size), float(scale), antialiasing)
  rows = np.broadcast_to(np.arange(out_size)[:, None], indices.shape)
  matrix = np.zeros((out_size, in_size), np.float64)
  np.add.at(matrix, (rows, indices.astype(np.int64)), weights)
  matrix.flags.writeable = False  # Shared by the cache.
  return matrix


def output_shape(height: int, width: int, scale: float) -> tuple[int, int]:
  """MATLAB output size `(ceil(height * scale), ceil(width * scale))`."""
  return (int(bicubic_taps.output_size(math, height, scale)),
          int(bicubic_taps.output_size(math, width, scale)))


def _resize_matrices(x_shape, scale, antialiasing):
  """Height and width matrices for an image of shape `[..., H, W, C]`."""
  in_h, in_w = x_shape[-3], x_shape[-2]
  out_h, out_w = output_shape(in_h, in_w, scale)
  return (resize_matrix(in_h, out_h, float(scale), bool(antialiasing)),
          resize_matrix(in_w, out_w, float(scale), bool(antialiasing)))


def imresize(x: jax.Array, scale: float, antialiasing: bool = True) -> jax.Array:
  """MATLAB `imresize(x, scale, 'bicubic')` in JAX.

  Args:
    x: float `[..., H, W, C]` (any leading batch dims), values in [0, 1]. Not clipped.
    scale: static output / input scale factor, e.g. 1/4 or 4.
    antialiasing: widen the kernel when downscaling (MATLAB default).

  Returns:
    `[..., ceil(H * scale), ceil(W * scale), C]`, dtype of `x` (computed in float32).
  """
  x = jnp.asarray(x)
  matrix_h, matrix_w = _resize_matrices(x.shape, scale, antialiasing)
  # HIGHEST precision: the default on GPU/TPU uses TF32/bf16 passes, far too coarse here.
  einsum = functools.partial(jnp.einsum, precision=jax.lax.Precision.HIGHEST)
  y = x.astype(jnp.float32)
  y = einsum("oh,...hwc->...owc", jnp.asarray(matrix_h, jnp.float32), y)
  y = einsum("ow,...hwc->...hoc", jnp.asarray(matrix_w, jnp.float32), y)
  return y.astype(x.dtype)


def imresize_np(x: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
  """Host-side numpy twin of `imresize`: float `[..., H, W, C]` -> float32, float64 maths."""
  x = np.asarray(x, np.float64)
  matrix_h, matrix_w = _resize_matrices(x.shape, scale, antialiasing)
  y = np.einsum("oh,...hwc->...owc", matrix_h, x, optimize=True)
  y = np.einsum("ow,...hwc->...hoc", matrix_w, y, optimize=True)
  return y.astype(np.float32)
