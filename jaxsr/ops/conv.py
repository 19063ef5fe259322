"""Stride-1 'same' 2-D convolution that trains fast on XLA:CPU.

On CPU, XLA (jax 0.10) hands f32 NHWC convolutions with more than 16 channels to YNNPACK,
which (a) computes a convolution's filter gradient (autodiff emits a convolution that uses the
output gradient as its kernel) very slowly: 3.3 s for x `[16, 128, 128, 64]`, 3x3 64->64, ten
times the forward convolution; and (b) runs e.g. a `[16, 32, 32, 64]` 3x3 convolution on one
core only (~50 GFLOP/s here, vs ~95 GFLOP/s on two cores for XLA's Eigen convolution).

`conv2d_same` therefore has a custom VJP, and on CPU:
* the filter gradient is an im2col matmul over chunks of image rows (~10x faster);
* the input gradient is a forward convolution of the output gradient with the flipped kernel
  (the program XLA's autodiff builds);
* forward and input-gradient convolutions compute one extra zero-padded output row and drop
  it. YNNPACK declines convolutions whose output is larger than their input, so XLA uses its
  multi-threaded Eigen convolution instead. Values are unchanged; only speed depends on this.
On every other platform (GPU, TPU) the convolution and its gradients are XLA's own; the
branch is picked by `jax.lax.platform_dependent` when the program is lowered for its device.

`conv2d_same_concat(xs, kernel)` is `conv2d_same(jnp.concatenate(xs, -1), kernel)`: the
convolutions of densely connected blocks (RRDBNet's), whose input grows by concatenation. On
CPU its forward pass skips the concatenation: it sums the convolutions of each part with its
slice of the kernel's input channels. That saves the copies of the growing input, and the
smaller convolutions are independent, so XLA:CPU runs them concurrently. Measured on 2 cores,
batch 1, float32: one RRDBNet dense block (64 feat, grow 32) 52-57 ms instead of 66-79 ms at
128x128 and 252 ms instead of 334 ms at 256x256; the whole RRDBNet 64x23 x4 at 128x128 4.5 s
instead of 5.6 s. Its gradients are those of the concatenation's convolution (the
concatenation happens in the backward pass), so training costs the same as before (RRDBNet
batch 4, LR 32: 5.4-5.7 s per step either way); summing the part-wise gradients instead made
the step ~4% slower. On other platforms, and inside `portable()` below, it is the
concatenation and one convolution, as written.

`depthwise_conv2d_same(x, kernel)` is the depthwise ('groups = channels') convolution of
OmniSR and DAT. XLA:CPU computes it slowly, and its gradient inside a loop (a scanned trunk)
very slowly: for x `[8, 64, 64, 192]`, 3x3, forward 375 ms, the gradient of three blocks
1.0 s unrolled and 34 s scanned. On CPU it is therefore the sum of the k*k shifted inputs
times their per-channel weights, and its custom VJP keeps only x and the kernel for the
backward pass (dx: the same taps over the output gradient with the kernel flipped; dkernel: one
sum over (B, H, W) per tap); elsewhere, and inside `portable()`, the grouped convolution with
XLA's gradients.

Forward-mode autodiff (`jax.jvp`) is not available through a custom VJP.

Inside `with portable():` (used by `jaxsr.export`), `conv2d_same` traces to one plain
`lax.conv_general_dilated` instead: no platform branches or custom VJP in the program, so
converters (TFLite, ONNX) see an ordinary convolution that runs the same on any platform.
"""

import contextlib
import contextvars
from typing import Iterator, Sequence

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

# Bytes of one im2col chunk `[rows, k*k*in]` in the CPU filter gradient: small enough to stay
# in cache, large enough for an efficient matmul (1-4 MiB measured equally fast).
_IM2COL_CHUNK_BYTES = 2 * 2**20

_PORTABLE = contextvars.ContextVar("jaxsr_portable_conv", default=False)


@contextlib.contextmanager
def portable() -> Iterator[None]:
  """Within this context, functions traced call plain XLA convolutions (see the module
  docstring). It acts at trace time: a function jit-compiled or `make_jaxpr`-traced before,
  with the same argument shapes, keeps its cached program; trace fresh functions inside."""
  token = _PORTABLE.set(True)
  try:
    yield
  finally:
    _PORTABLE.reset(token)


def is_portable() -> bool:
  """Whether functions traced now trace plain convolutions (inside `portable()`). Models also
  trace their repeated blocks unrolled there (`trunk.apply_blocks`): exporters see one
  straight-line program, without loops."""
  return _PORTABLE.get()


def _conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`lax` convolution: `[B, H, W, in]` x `[k, k, in, out]` -> `[B, H, W, out]`; a depthwise
  kernel `[k, k, 1, C]` makes it the grouped convolution of `C` groups."""
  pad = kernel.shape[0] // 2
  return lax.conv_general_dilated(
      x, kernel, window_strides=(1, 1), padding=((pad, pad), (pad, pad)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=x.shape[-1] // kernel.shape[2])


def _conv_cpu(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`_conv` computed with one extra output row (dropped), which keeps XLA:CPU from handing
  it to YNNPACK (see the module docstring)."""
  pad = kernel.shape[0] // 2
  y = lax.conv_general_dilated(
      x, kernel, window_strides=(1, 1), padding=((pad, pad + 1), (pad, pad)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return y[:, :-1]


def _flip_kernel(kernel: jax.Array) -> jax.Array:
  """`[k, k, in, out]` -> `[k, k, out, in]` flipped in space: convolving dy `[B, H, W, out]`
  with it in 'same' mode gives dL/dx `[B, H, W, in]`."""
  return jnp.flip(kernel, (0, 1)).swapaxes(2, 3)


def filter_grad_im2col(x: jax.Array, dy: jax.Array, kernel_size: int,
                       chunk_bytes: int = _IM2COL_CHUNK_BYTES) -> jax.Array:
  """dL/dkernel of a 'same' convolution as im2col matmuls over chunks of image rows.

  For each chunk of R rows (all images at once), the k*k shifted windows of the zero-padded
  input are concatenated into columns `[B, R, W, k*k*in]` and contracted with dy's rows
  `[B, R, W, out]` over (B, R, W); the chunks are summed in a `fori_loop`, accumulating in at
  least float32. Rows past H are zero in dy, so H need not divide into chunks.

  The batch is contracted per group of B / G images, G = gcd(B, device count), and the G
  partial sums added after the loop: with the batch split over G devices each device sums its
  own images in the loop, and the one cross-device sum happens after it. Contracting all of B
  in the loop made the SPMD partitioner sum across devices in every iteration, a collective
  inside a loop, which XLA:CPU does not order against the step's other collectives (see
  `sharding.cpu_data_parallel`). On one device G = 1: the same program as a single sum.

  Args:
    x: forward input `[B, H, W, in]`.
    dy: gradient of the output `[B, H, W, out]`.
    kernel_size: odd k.
    chunk_bytes: target size of one chunk of columns.

  Returns:
    `[k, k, in, out]` in `dy.dtype`.
  """
  batch, height, width, in_ch = x.shape
  out_ch = dy.shape[-1]
  k, pad = kernel_size, kernel_size // 2
  acc_dtype = jnp.promote_types(dy.dtype, jnp.float32)
  rows = max(1, chunk_bytes // (k * k * in_ch * x.dtype.itemsize))
  chunk_h = max(1, min(height, rows // (batch * width)))
  num_chunks = -(-height // chunk_h)
  extra = num_chunks * chunk_h - height
  x_pad = jnp.pad(x, ((0, 0), (pad, pad + extra), (pad, pad), (0, 0)))
  dy_pad = jnp.pad(dy, ((0, 0), (0, extra), (0, 0), (0, 0)))
  groups = int(np.gcd(batch, jax.device_count()))
  group = lambda a: a.reshape(groups, batch // groups, *a.shape[1:])

  def add_chunk(chunk, acc):
    start = chunk * chunk_h
    x_rows = lax.dynamic_slice_in_dim(x_pad, start, chunk_h + 2 * pad, axis=1)
    cols = jnp.concatenate([x_rows[:, i:i + chunk_h, j:j + width, :]
                            for i in range(k) for j in range(k)], axis=-1)
    dy_rows = lax.dynamic_slice_in_dim(dy_pad, start, chunk_h, axis=1)
    # [groups, out, k*k*in] (measured faster on XLA:CPU than [groups, k*k*in, out]).
    return acc + lax.dot_general(group(dy_rows), group(cols),
                                 (((1, 2, 3), (1, 2, 3)), ((0,), (0,))),
                                 preferred_element_type=acc_dtype)

  acc = lax.fori_loop(0, num_chunks, add_chunk,
                      jnp.zeros((groups, out_ch, k * k * in_ch), acc_dtype))
  return acc.sum(0).T.reshape(k, k, in_ch, out_ch).astype(dy.dtype)


def _cpu_grads(x, kernel, dy):
  """(dx, dkernel) with the CPU-friendly formulations."""
  dx = _conv_cpu(dy, _flip_kernel(kernel))
  dw = filter_grad_im2col(x, dy, kernel.shape[0])
  return dx.astype(x.dtype), dw.astype(kernel.dtype)


def _grads_per_platform(xla_fn, cpu_grads):
  """`(x, kernel, dy) -> (dx, dkernel)`: `cpu_grads` on CPU, elsewhere XLA's autodiff of
  `xla_fn(x, kernel)`; the branch is picked when the program is lowered for its device."""
  def xla_grads(x, kernel, dy):
    _, vjp = jax.vjp(xla_fn, x, kernel)
    return vjp(dy)
  return lambda x, kernel, dy: lax.platform_dependent(x, kernel, dy, cpu=cpu_grads,
                                                      default=xla_grads)


def _op_per_platform(cpu_fn, xla_fn, grads):
  """`(x, kernel) -> y` with a custom VJP: `cpu_fn` on CPU, `xla_fn` elsewhere, and `grads`
  (`_grads_per_platform`'s); x and the kernel are the only values kept for the backward pass."""
  forward = lambda x, kernel: lax.platform_dependent(x, kernel, cpu=cpu_fn, default=xla_fn)
  op = jax.custom_vjp(forward)
  op.defvjp(lambda x, kernel: (forward(x, kernel), (x, kernel)),
            lambda residuals, dy: grads(*residuals, dy))
  return op


_conv_grads = _grads_per_platform(_conv, _cpu_grads)
_conv_custom_vjp = _op_per_platform(_conv_cpu, _conv, _conv_grads)


def _check_kernel(caller: str, kernel: jax.Array) -> None:
  """ValueError unless `kernel` is `[k, k, in, out]` with odd k."""
  k = kernel.shape[0]
  if kernel.ndim != 4 or kernel.shape[1] != k or k % 2 == 0:
    raise ValueError(f"{caller} needs an odd square kernel [k, k, in, out], got "
                     f"{kernel.shape}")


def conv2d_same(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Stride-1 convolution with zero padding `k // 2` (output size = input size), no bias.

  Same values as `lax.conv_general_dilated` with NHWC/HWIO layouts. On GPU/TPU it is that
  convolution with XLA's gradients; on CPU faster formulations (see the module docstring).

  Args:
    x: `[B, H, W, in]`.
    kernel: `[k, k, in, out]` with odd k.

  Returns:
    `[B, H, W, out]` in the promoted dtype of x and kernel; gradients come back in each
    argument's own dtype.
  """
  _check_kernel("conv2d_same", kernel)
  if x.ndim != 4 or x.shape[-1] != kernel.shape[2]:
    raise ValueError(f"conv2d_same: input {x.shape} does not match kernel {kernel.shape}")
  dtype = jnp.result_type(x, kernel)
  if _PORTABLE.get():
    return _conv(x.astype(dtype), kernel.astype(dtype))
  return _conv_custom_vjp(x.astype(dtype), kernel.astype(dtype))


def _concat_conv_per_platform(xs, kernel):
  """The convolution of the channel concatenation of `xs`: on CPU as the sum of each part's
  convolution with its slice of the kernel (`_conv_cpu`), elsewhere of the concatenation."""
  def split(*args):
    *parts, w = args
    acc_dtype = jnp.promote_types(w.dtype, jnp.float32)  # bfloat16 parts: summed in float32.
    out, start = None, 0
    for x in parts:
      y = _conv_cpu(x, w[:, :, start:start + x.shape[-1]]).astype(acc_dtype)
      out, start = (y if out is None else out + y), start + x.shape[-1]
    return out.astype(w.dtype)

  def concat(*args):
    *parts, w = args
    return _conv(jnp.concatenate(parts, -1), w)

  return lax.platform_dependent(*xs, kernel, cpu=split, default=concat)


@jax.custom_vjp
def _concat_conv_custom_vjp(xs, kernel):
  return _concat_conv_per_platform(xs, kernel)


def _concat_conv_fwd(xs, kernel):
  return _concat_conv_per_platform(xs, kernel), (xs, kernel)


def _concat_conv_bwd(residuals, dy):
  """The gradients of the concatenation's convolution (`conv2d_same`'s), split into parts."""
  xs, kernel = residuals
  dx, dkernel = _conv_grads(jnp.concatenate(xs, -1), kernel, dy)
  ends = np.cumsum([x.shape[-1] for x in xs])
  return tuple(dx[..., end - x.shape[-1]:end] for x, end in zip(xs, ends)), dkernel


_concat_conv_custom_vjp.defvjp(_concat_conv_fwd, _concat_conv_bwd)


def conv2d_same_concat(xs: Sequence[jax.Array], kernel: jax.Array) -> jax.Array:
  """`conv2d_same(jnp.concatenate(xs, -1), kernel)`, computed on CPU without concatenating.

  On CPU the forward pass is the sum over parts i of the convolutions of `xs[i]` with the
  kernel's input channels `[c_i, c_i + n_i)` (c_i: channels before part i, n_i: its channels):
  the same values up to float rounding (the sum runs in another order). The gradients are
  those of the concatenation's convolution (`conv2d_same`'s), split into parts. Elsewhere, and
  inside `portable()`, it is `conv2d_same` of the concatenation.

  Args:
    xs: `[B, H, W, n_i]` parts, concatenated along channels (one part: `conv2d_same`).
    kernel: `[k, k, sum n_i, out]` with odd k.

  Returns:
    `[B, H, W, out]` in the promoted dtype of xs and kernel; gradients come back in each
    argument's own dtype.
  """
  xs = tuple(xs)
  if not xs:
    raise ValueError("conv2d_same_concat needs at least one input")
  if len(xs) == 1 or _PORTABLE.get():
    return conv2d_same(xs[0] if len(xs) == 1 else jnp.concatenate(xs, -1), kernel)
  _check_kernel("conv2d_same_concat", kernel)
  channels = [x.shape[-1] for x in xs]
  if (any(x.ndim != 4 or x.shape[:-1] != xs[0].shape[:-1] for x in xs)
      or kernel.shape[2] != sum(channels)):
    raise ValueError(f"conv2d_same_concat: parts {[x.shape for x in xs]} do not concatenate "
                     f"along channels to the input of kernel {kernel.shape}")
  dtype = jnp.result_type(*xs, kernel)
  return _concat_conv_custom_vjp(tuple(x.astype(dtype) for x in xs), kernel.astype(dtype))


def _depthwise_taps(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The depthwise `_conv` as the sum of the k*k shifted inputs times their channel weights,
  accumulated in at least float32 (as XLA's convolution does)."""
  k, pad = kernel.shape[0], kernel.shape[0] // 2
  _, height, width, _ = x.shape
  acc_dtype = jnp.promote_types(x.dtype, jnp.float32)
  x_pad = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))).astype(acc_dtype)
  w = kernel.astype(acc_dtype)
  y = None
  for i in range(k):
    for j in range(k):
      tap = x_pad[:, i:i + height, j:j + width, :] * w[i, j, 0]
      y = tap if y is None else y + tap
  return y.astype(x.dtype)


def _depthwise_taps_grads(x, kernel, dy):
  """(dx, dkernel) of `_depthwise_taps`: dx is the taps of dy with the kernel flipped in
  space; dkernel[i, j, 0, c] sums x times dy shifted by (p - i, p - j) over (B, H, W).

  Only dy is padded and shifted: shifted windows of x would be the forward pass's own, which
  XLA then keeps alive from the forward to the backward pass (k*k copies of x per call)."""
  k, pad = kernel.shape[0], kernel.shape[0] // 2
  _, height, width, _ = x.shape
  acc_dtype = jnp.promote_types(dy.dtype, jnp.float32)
  dx = _depthwise_taps(dy, jnp.flip(kernel, (0, 1)))
  dy_pad = jnp.pad(dy, ((0, 0), (pad, pad), (pad, pad), (0, 0))).astype(acc_dtype)
  x_acc = x.astype(acc_dtype)
  shifted = lambda i, j: dy_pad[:, 2 * pad - i:2 * pad - i + height,
                                2 * pad - j:2 * pad - j + width]
  dw = jnp.stack([jnp.sum(x_acc * shifted(i, j), axis=(0, 1, 2))
                  for i in range(k) for j in range(k)])
  return dx.astype(x.dtype), dw.reshape(kernel.shape).astype(kernel.dtype)


_depthwise_custom_vjp = _op_per_platform(
    _depthwise_taps, _conv, _grads_per_platform(_conv, _depthwise_taps_grads))


def depthwise_conv2d_same(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Stride-1 depthwise convolution (torch `Conv2d(C, C, k, padding=k // 2, groups=C)`), no
  bias. On CPU a sum of shifted inputs (see the module docstring), elsewhere and inside
  `portable()` XLA's grouped convolution; the same values up to float rounding.

  Args:
    x: `[B, H, W, C]`.
    kernel: `[k, k, 1, C]` with odd k (the Flax layout of torch's `[C, 1, k, k]`).

  Returns:
    `[B, H, W, C]` in the promoted dtype of x and kernel.
  """
  _check_kernel("depthwise_conv2d_same", kernel)
  if x.ndim != 4 or kernel.shape[2:] != (1, x.shape[-1]):
    raise ValueError(f"depthwise_conv2d_same: input {x.shape} does not match kernel "
                     f"{kernel.shape} (expected [k, k, 1, {x.shape[-1]}])")
  dtype = jnp.result_type(x, kernel)
  x, kernel = x.astype(dtype), kernel.astype(dtype)
  if _PORTABLE.get():
    return _conv(x, kernel)
  return _depthwise_custom_vjp(x, kernel)
