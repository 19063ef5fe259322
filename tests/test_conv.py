"""Tests for jaxsr.ops.conv: values and gradients equal XLA's convolution and its autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr.ops import conv

from tests import utils

pytestmark = pytest.mark.numerics


def _lax_conv(x, kernel):
  """XLA's 'same' convolution; a depthwise kernel `[k, k, 1, C]` makes it grouped."""
  pad = kernel.shape[0] // 2
  return jax.lax.conv_general_dilated(
      x, kernel, window_strides=(1, 1), padding=((pad, pad), (pad, pad)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=x.shape[-1] // kernel.shape[2])


def _inputs(x_shape, kernel_shape, dtype=jnp.float32):
  rng = np.random.default_rng(0)
  x = rng.standard_normal(x_shape, np.float32)
  kernel = rng.standard_normal(kernel_shape, np.float32)
  # A non-uniform cotangent: weights every output position differently.
  dy = rng.standard_normal((*x_shape[:3], kernel_shape[-1]), np.float32)
  return jnp.asarray(x, dtype), jnp.asarray(kernel, dtype), jnp.asarray(dy, dtype)


def _grads(conv_fn, x, kernel, dy):
  """(dL/dx, dL/dkernel) for L = sum(conv_fn(x, kernel) * dy), under jit."""
  loss = lambda x, kernel: jnp.sum(conv_fn(x, kernel).astype(jnp.float32) * dy)
  return jax.jit(jax.grad(loss, argnums=(0, 1)))(x, kernel)


def _assert_close(actual, expected, ops, dtype=np.float32):
  """Two convolution algorithms (XLA's, im2col matmuls) sum `ops` products in other orders:
  equal within that rounding, relative to the largest magnitude of `expected`."""
  utils.assert_close(actual, expected, dtype, ops)


def _ops(x_shape, kernel_shape):
  """Sums of the forward / input gradient (taps x channels) and of the filter gradient (B*H*W)."""
  k, _, cin, cout = kernel_shape
  return k * k * cin, k * k * cout, int(np.prod(x_shape[:3]))


@pytest.mark.parametrize("x_shape, kernel_shape", [
    ((2, 6, 5, 3), (1, 1, 3, 4)),     # 1x1, odd width
    ((2, 7, 8, 3), (3, 3, 3, 5)),     # odd height, in != out
    ((1, 8, 8, 4), (3, 3, 4, 2)),     # out < in
    ((3, 5, 9, 2), (5, 5, 2, 3)),     # kernel wider than some margins
    ((1, 11, 10, 2), (9, 9, 2, 3)),   # SRCNN-sized kernel
])
def test_forward_and_gradients_match_lax(x_shape, kernel_shape):
  x, kernel, dy = _inputs(x_shape, kernel_shape)
  forward_ops, dx_ops, dw_ops = _ops(x_shape, kernel_shape)
  _assert_close(jax.jit(conv.conv2d_same)(x, kernel), _lax_conv(x, kernel), forward_ops)
  dx, dw = _grads(conv.conv2d_same, x, kernel, dy)
  dx_ref, dw_ref = _grads(_lax_conv, x, kernel, dy)
  assert dx.shape == x.shape and dw.shape == kernel.shape
  _assert_close(dx, dx_ref, dx_ops)
  _assert_close(dw, dw_ref, dw_ops)


# Columns of one image row of x [2, 7, 4, 4] for a 3x3 kernel: B * W * k * k * in float32s.
_ROW_BYTES = 2 * 4 * 3 * 3 * 4 * 4


@pytest.mark.parametrize("chunk_bytes", [1, 3 * _ROW_BYTES, 1 << 30])
def test_filter_grad_chunks_sum_to_full_gradient(chunk_bytes):
  # One row per chunk; 3 rows per chunk (H = 7 leaves a partial last chunk); a single chunk.
  x, kernel, dy = _inputs((2, 7, 4, 4), (3, 3, 4, 3))
  dw = conv.filter_grad_im2col(x, dy, 3, chunk_bytes=chunk_bytes)
  _, dw_ref = _grads(_lax_conv, x, kernel, dy)
  _assert_close(dw, dw_ref, _ops((2, 7, 4, 4), (3, 3, 4, 3))[2])


def test_bfloat16_gradients_in_input_dtypes():
  x, kernel, dy = _inputs((2, 9, 8, 4), (3, 3, 4, 6), jnp.bfloat16)
  y = conv.conv2d_same(x, kernel)
  assert y.dtype == jnp.bfloat16
  dx, dw = _grads(conv.conv2d_same, x, kernel, dy)
  assert dx.dtype == jnp.bfloat16 and dw.dtype == jnp.bfloat16
  # Reference: float32 autodiff of the same bfloat16 values; bfloat16 has 8 bits of mantissa.
  # Products accumulate in float32 and the result is rounded once to bfloat16; dw's im2col
  # matmuls round their chunks' partial sums to bfloat16 too (a few per output): 4 roundings.
  f32 = lambda a: a.astype(jnp.float32)
  dx_ref, dw_ref = _grads(_lax_conv, f32(x), f32(kernel), f32(dy))
  _assert_close(y, _lax_conv(f32(x), f32(kernel)), 1, jnp.bfloat16)
  _assert_close(dx, dx_ref, 1, jnp.bfloat16)
  _assert_close(dw, dw_ref, 4, jnp.bfloat16)


def test_mixed_dtypes_promote_and_grads_keep_each_dtype():
  x, kernel, dy = _inputs((1, 5, 5, 2), (3, 3, 2, 3))
  x16 = x.astype(jnp.bfloat16)
  assert conv.conv2d_same(x16, kernel).dtype == jnp.float32
  dx, dw = _grads(conv.conv2d_same, x16, kernel, dy)
  assert dx.dtype == jnp.bfloat16 and dw.dtype == jnp.float32
  _, dw_ref = _grads(_lax_conv, x16.astype(jnp.float32), kernel, dy)
  _assert_close(dw, dw_ref, _ops((1, 5, 5, 2), (3, 3, 2, 3))[2])


def test_second_order_gradient_matches_lax():
  x, kernel, _ = _inputs((1, 6, 5, 2), (3, 3, 2, 2))

  def grad_norm(conv_fn):
    def f(kernel):
      dx = jax.grad(lambda x: jnp.sum(jnp.tanh(conv_fn(x, kernel))))(x)
      return jnp.sum(dx**2)
    return jax.jit(jax.grad(f))(kernel)

  # Forward conv, tanh, input-gradient conv, square-sum over x, then their transposes for the
  # kernel gradient: about 4 x 18 + 60 + the filter-gradient sum over 30 positions.
  _assert_close(grad_norm(conv.conv2d_same), grad_norm(_lax_conv), 4 * 18 + 60 + 30)


@pytest.mark.parametrize("platform, num_convs, num_loops", [
    ("cpu", 2, 1),    # forward + input gradient convs; filter gradient as a loop of matmuls
    ("cuda", 3, 0),   # XLA's own gradients: three convolutions
    ("tpu", 3, 0),
])
def test_backward_is_chosen_per_lowering_platform(platform, num_convs, num_loops):
  x, kernel, _ = _inputs((1, 6, 6, 2), (3, 3, 2, 3))
  train = jax.jit(jax.grad(lambda x, k: jnp.sum(conv.conv2d_same(x, k) ** 2), argnums=(0, 1)))
  text = train.trace(x, kernel).lower(lowering_platforms=(platform,)).as_text()
  assert text.count("stablehlo.convolution") == num_convs
  assert text.count("stablehlo.while") == num_loops


@pytest.mark.parametrize("x_shape, kernel_shape", [
    ((1, 4, 4, 3), (2, 2, 3, 3)),   # even kernel
    ((1, 4, 4, 3), (3, 1, 3, 3)),   # not square
    ((1, 4, 4, 2), (3, 3, 3, 3)),   # channel mismatch
])
def test_rejects_unsupported_shapes(x_shape, kernel_shape):
  with pytest.raises(ValueError):
    conv.conv2d_same(jnp.zeros(x_shape), jnp.zeros(kernel_shape))


def test_concat_conv_equals_the_convolution_of_the_concatenation_with_its_gradients():
  rng = np.random.default_rng(0)
  parts = [jnp.asarray(rng.normal(size=(2, 7, 6, c)), jnp.float32) for c in (5, 3, 4)]
  kernel = jnp.asarray(rng.normal(size=(3, 3, 12, 6)), jnp.float32)
  cot = jnp.asarray(rng.normal(size=(2, 7, 6, 6)), jnp.float32)

  def loss(fn):
    return lambda ps, k: jnp.sum(fn(ps, k) * cot)

  split = lambda ps, k: conv.conv2d_same_concat(ps, k)
  whole = lambda ps, k: conv.conv2d_same(jnp.concatenate(ps, -1), k)
  # 3x3 taps x 12 channels forward and for the parts' gradients (x 6 outputs); the kernel's
  # gradient sums over the 2 x 7 x 6 positions.
  utils.assert_close(jax.jit(split)(parts, kernel), whole(parts, kernel), ops=3 * 3 * 12)
  got = jax.jit(jax.grad(loss(split), argnums=(0, 1)))(parts, kernel)
  want = jax.grad(loss(whole), argnums=(0, 1))(parts, kernel)
  for g, w, ops in zip(jax.tree.leaves(got), jax.tree.leaves(want), [9 * 6] * 3 + [2 * 7 * 6]):
    utils.assert_close(g, w, ops=ops)
  # On CPU the forward is one convolution per part (no concatenate); portable: one, concatenated.
  eqns = lambda closed: [e.primitive.name for e in closed.eqns]
  with conv.portable():
    portable = jax.make_jaxpr(lambda ps, k: conv.conv2d_same_concat(ps, k))(parts, kernel)
  assert eqns(portable).count("concatenate") == 1
  with pytest.raises(ValueError, match="do not concatenate"):
    conv.conv2d_same_concat([parts[0], parts[1][:, :3]], kernel[:, :, :8])


@pytest.mark.parametrize("x_shape, k", [((2, 7, 6, 5), 3), ((1, 5, 9, 3), 5), ((1, 4, 4, 2), 1)])
def test_depthwise_forward_and_gradients_match_lax(x_shape, k):
  x, kernel, dy = _inputs(x_shape, (k, k, 1, x_shape[-1]))
  # Forward: k*k taps per output; input gradient: k*k; kernel gradient: B*H*W positions.
  utils.assert_close(jax.jit(conv.depthwise_conv2d_same)(x, kernel), _lax_conv(x, kernel),
                     ops=k * k)
  got = _grads(conv.depthwise_conv2d_same, x, kernel, dy)
  want = _grads(_lax_conv, x, kernel, dy)
  utils.assert_close(got[0], want[0], ops=k * k)
  utils.assert_close(got[1], want[1], ops=int(np.prod(x_shape[:3])))


def test_depthwise_gradient_inside_a_scan_matches_the_unrolled_blocks():
  """The trunks scan their blocks: the depthwise gradient inside `lax.scan` (where XLA:CPU's
  grouped convolution is slowest) equals the unrolled blocks' with XLA's convolution."""
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((2, 6, 7, 4)), jnp.float32)
  kernels = jnp.asarray(rng.standard_normal((3, 3, 3, 1, 4)) * 0.5, jnp.float32)

  def scanned(ks, x):
    y, _ = jax.lax.scan(lambda x, k: (jnp.tanh(conv.depthwise_conv2d_same(x, k)), None), x, ks)
    return jnp.sum(y ** 2)

  def unrolled(ks, x):
    for k in ks:
      x = jnp.tanh(_lax_conv(x, k))
    return jnp.sum(x ** 2)

  got = jax.jit(jax.grad(scanned, argnums=(0, 1)))(kernels, x)
  want = jax.grad(unrolled, argnums=(0, 1))(kernels, x)
  # Three blocks of 9-tap sums, then the kernels' sums over 2 x 6 x 7 positions.
  for g, w in zip(got, want):
    utils.assert_close(g, w, ops=3 * 9 + 2 * 6 * 7)


@pytest.mark.parametrize("platform, grouped_convs", [("cpu", 0), ("cuda", 1), ("tpu", 1)])
def test_depthwise_is_taps_on_cpu_and_a_grouped_convolution_elsewhere(platform, grouped_convs):
  x, kernel, _ = _inputs((1, 6, 6, 4), (3, 3, 1, 4))
  text = jax.jit(conv.depthwise_conv2d_same).trace(x, kernel).lower(
      lowering_platforms=(platform,)).as_text()
  assert text.count("stablehlo.convolution") == grouped_convs
  assert text.count("feature_group_count = 4") == grouped_convs
  with conv.portable():  # Exporters: one grouped convolution, no platform branches.
    portable = jax.make_jaxpr(lambda x, k: conv.depthwise_conv2d_same(x, k))(x, kernel)
  assert [e.primitive.name for e in portable.eqns] == ["conv_general_dilated"]


def test_depthwise_bfloat16_accumulates_in_float32_and_rejects_bad_kernels():
  x, kernel, _ = _inputs((1, 8, 8, 6), (3, 3, 1, 6), jnp.bfloat16)
  got = jax.jit(conv.depthwise_conv2d_same)(x, kernel)
  assert got.dtype == jnp.bfloat16
  want = _lax_conv(x.astype(jnp.float32), kernel.astype(jnp.float32))
  utils.assert_close(got, want, jnp.bfloat16, ops=1)  # One rounding: the final cast.
  dx, dw = jax.jit(jax.grad(lambda x, k: jnp.sum(conv.depthwise_conv2d_same(x, k)),
                            argnums=(0, 1)))(x, kernel.astype(jnp.float32))
  assert (dx.dtype, dw.dtype) == (jnp.bfloat16, jnp.float32)
  dx, dw = jax.jit(jax.grad(lambda x, k: jnp.sum(conv.depthwise_conv2d_same(x, k)),
                            argnums=(0, 1)))(x, kernel)
  assert (dx.dtype, dw.dtype) == (jnp.bfloat16, jnp.bfloat16)
  with pytest.raises(ValueError, match=r"expected \[k, k, 1, 6\]"):
    conv.depthwise_conv2d_same(x, jnp.zeros((3, 3, 6, 6)))
  with pytest.raises(ValueError, match="odd square kernel"):
    conv.depthwise_conv2d_same(x, jnp.zeros((2, 2, 1, 6)))


def test_depthwise_backward_keeps_no_shifted_copies_of_the_input():
  """The CPU gradient keeps x, not its k*k shifted windows, from the forward to the backward
  pass: a chain of blocks needs about the temporary memory of XLA's grouped convolution
  (sharing the windows with the forward pass once took 3.3x as much)."""
  x = jnp.ones((2, 16, 16, 32))
  kernels = jnp.ones((8, 3, 3, 1, 32))

  def temp_bytes(dwconv):
    def loss(ks, x):
      for k in ks:
        x = x + jax.nn.gelu(dwconv(x, k))
      return jnp.sum(x**2)
    compiled = jax.jit(jax.grad(loss)).lower(kernels, x).compile()
    return compiled.memory_analysis().temp_size_in_bytes

  assert temp_bytes(conv.depthwise_conv2d_same) <= 1.5 * temp_bytes(_lax_conv)
