"""Index and weight arithmetic of MATLAB's bicubic `imresize`, written once for any backend.

This is the single source of truth for the resize maths used by the numpy/JAX resize
(`jaxsr.ops.imresize`, where it runs in numpy on static shapes) and the TensorFlow resize
(`jaxsr.data.imresize_tf`, where it runs as graph ops on shapes known only at run time).
Every function takes `xp`, an array namespace with numpy's names: `numpy` itself, or the
small TensorFlow adapter in `jaxsr.data.imresize_tf`. Only these members are used:
`float64, arange(start, stop, dtype=), floor, ceil, abs, where, zeros_like,
sum(x, axis=, keepdims=), mod`, plus Python operators and `[:, None]` indexing.

This module imports neither numpy, JAX nor TensorFlow.

Semantics follow BasicSR's `calculate_weights_indices` (a port of MATLAB's `imresize`):
cubic kernel with a = -0.5, kernel stretched by 1/scale when downscaling with
antialiasing, and MATLAB 'symmetric' mirroring of taps that fall outside the image.
"""

import math

KERNEL_WIDTH = 4.0  # Support of the cubic kernel, in input pixels.


def cubic(xp, x):
  """Keys cubic convolution kernel with a = -0.5 (MATLAB's `cubic`), elementwise."""
  absx = xp.abs(x)
  absx2 = absx * absx
  absx3 = absx2 * absx
  inner = 1.5 * absx3 - 2.5 * absx2 + 1.0
  outer = -0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0
  zeros = xp.zeros_like(x)
  return xp.where(absx <= 1.0, inner, xp.where(absx <= 2.0, outer, zeros))


def num_taps(scale, antialiasing=True):
  """Static number of input pixels P read per output pixel: ceil(kernel width) + 2."""
  kernel_width = KERNEL_WIDTH
  if scale < 1 and antialiasing:
    kernel_width = KERNEL_WIDTH / scale
  return int(math.ceil(kernel_width)) + 2


def output_size(xp, in_size, scale):
  """MATLAB output length ceil(in_size * scale) as a float64 (scalar or 0-d tensor)."""
  return xp.ceil(in_size * scale)


def mirror_index(xp, index, in_size):
  """Maps any integer-valued float index to [0, in_size) by MATLAB 'symmetric' mirroring.

  Index -1 maps to 0, -2 to 1, in_size to in_size - 1, and so on, with period 2 * in_size
  (so even taps several image lengths away, possible for tiny inputs, stay valid).
  """
  period = 2.0 * in_size
  index = xp.mod(index, period)
  return xp.where(index >= in_size, period - 1.0 - index, index)


def bicubic_taps(xp, in_size, out_size, scale, antialiasing=True):
  """Input indices and weights of every output pixel along one axis.

  Args:
    xp: array namespace (see module docstring).
    in_size: input length, float64 scalar (numpy) or 0-d float64 tensor.
    out_size: output length, same kind as `in_size` (normally `output_size(...)`).
    scale: Python float, output length / input length (e.g. 0.25 or 4.0).
    antialiasing: widen the kernel by 1/scale when downscaling (MATLAB default).

  Returns:
    (indices, weights): both float64 `[out_size, P]` with P = `num_taps(scale, ...)`.
    `indices` are integer-valued, already mirrored into [0, in_size); `weights` sum to
    1 along axis 1. Output pixel i is `sum_p weights[i, p] * input[indices[i, p]]`.
  """
  stretch = scale if (scale < 1 and antialiasing) else 1.0
  kernel_width = KERNEL_WIDTH / stretch
  taps = num_taps(scale, antialiasing)
  # 1-based output coordinates mapped to 1-based input coordinates, pixel centres aligned.
  x = xp.arange(1.0, out_size + 1.0, dtype=xp.float64)
  u = x / scale + 0.5 * (1.0 - 1.0 / scale)
  left = xp.floor(u - kernel_width / 2.0)
  indices = left[:, None] + xp.arange(0.0, float(taps), dtype=xp.float64)[None, :]
  weights = stretch * cubic(xp, (u[:, None] - indices) * stretch)
  weights = weights / xp.sum(weights, axis=1, keepdims=True)
  # Taps with zero weight (BasicSR drops them) are harmless: they are kept and mirrored too.
  return mirror_index(xp, indices - 1.0, in_size), weights
