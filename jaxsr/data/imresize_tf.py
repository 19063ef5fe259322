"""MATLAB-exact bicubic `imresize` as TensorFlow graph ops, for tf.data pipelines.

Same numbers as `jaxsr.ops.imresize.imresize` (to float32 rounding), but image sizes may be
unknown until run time, so the taps are computed by TF ops inside the graph (no
`py_function`, so tf.data can run it in parallel).

One source of truth: the index/weight arithmetic lives only in `jaxsr.ops.bicubic_taps`,
written against a numpy-like namespace `xp`. The numpy/JAX resize runs it with `xp=numpy`;
here it runs with `_TF_NAMESPACE`, a table that maps those few numpy names onto TF ops.
Only the last step differs: JAX folds the taps into dense matrices (cheap constants for
static shapes, fast matmuls on accelerators), while this module gathers the P input
rows/columns per output pixel and sums them, which costs O(P * output) instead of
O(input * output) on the CPU for large images.

Importing this module does not import JAX.
"""

import math
import types

import tensorflow as tf

from jaxsr.ops import bicubic_taps

_TF_NAMESPACE = types.SimpleNamespace(
    float64=tf.float64,
    arange=lambda start, stop, dtype: tf.range(start, stop, dtype=dtype),
    floor=tf.math.floor,
    ceil=tf.math.ceil,
    abs=tf.math.abs,
    where=tf.where,
    zeros_like=tf.zeros_like,
    sum=lambda x, axis, keepdims: tf.math.reduce_sum(x, axis=axis, keepdims=keepdims),
    mod=tf.math.floormod,
)


def _resize_axis(image, axis, scale, antialiasing):
  """Resizes float32 `image` along `axis` (negative: -3 for H, -2 for W)."""
  xp = _TF_NAMESPACE
  in_size = tf.cast(tf.shape(image)[axis], tf.float64)
  out_size = bicubic_taps.output_size(xp, in_size, scale)
  indices, weights = bicubic_taps.bicubic_taps(xp, in_size, out_size, scale, antialiasing)
  indices = tf.cast(indices, tf.int32)
  weights = tf.cast(weights, tf.float32)
  # Weights of output pixel o broadcast along the axes after `axis`: [out, 1] or [out, 1, 1].
  trailing_ones = [1] * (-axis - 1)
  output = None
  for tap in range(bicubic_taps.num_taps(scale, antialiasing)):
    tap_weights = tf.reshape(weights[:, tap], [-1] + trailing_ones)
    term = tap_weights * tf.gather(image, indices[:, tap], axis=axis)
    output = term if output is None else output + term
  if image.shape[axis] is not None:  # Keep static sizes static (gather loses them).
    static_shape = output.shape.as_list()
    static_shape[axis] = int(bicubic_taps.output_size(math, image.shape[axis], scale))
    output.set_shape(static_shape)
  return output


def imresize_tf(image: tf.Tensor, scale: float, antialiasing: bool = True) -> tf.Tensor:
  """MATLAB `imresize(image, scale, 'bicubic')` in TensorFlow (graph-safe, dynamic sizes).

  Args:
    image: float `[..., H, W, C]` in [0, 1] (H, W may be dynamic). Not clipped.
    scale: Python float, output / input scale factor, e.g. 1/4 or 4.
    antialiasing: widen the kernel when downscaling (MATLAB default).

  Returns:
    float32 `[..., ceil(H * scale), ceil(W * scale), C]`.
  """
  scale = float(scale)
  image = tf.convert_to_tensor(image)
  image = tf.cast(image, tf.float32)
  image = _resize_axis(image, -3, scale, antialiasing)
  return _resize_axis(image, -2, scale, antialiasing)
