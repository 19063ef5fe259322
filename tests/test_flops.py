"""Analytic FLOPs (`jaxsr.flops`): closed forms for one convolution and one matmul, scanned
trunks counted once per block, and a train step's backward pass counted."""

import jax
import jax.numpy as jnp
import pytest

from jaxsr import flops
from jaxsr import models
from jaxsr.ops import conv

B, H, W, CIN, COUT, K = 2, 12, 10, 5, 7, 3


def _shape(*shape):
  return jax.ShapeDtypeStruct(shape, jnp.float32)


def test_one_convolution_and_its_gradients_match_the_closed_form():
  forward = 2 * B * H * W * COUT * K * K * CIN
  x, kernel = _shape(B, H, W, CIN), _shape(K, K, CIN, COUT)
  with conv.portable():  # XLA's own convolution and gradients (no CPU custom VJP)
    assert flops.count_flops(conv.conv2d_same, x, kernel).total == forward
    both = jax.grad(lambda x, k: (conv.conv2d_same(x, k) ** 2).sum(), argnums=(0, 1))
    # input gradient and filter gradient: one forward's worth each
    assert flops.count_flops(both, x, kernel).total == 3 * forward
  # the CPU branch (platform_dependent: the larger branch counts) computes the same products,
  # plus the rows its im2col filter gradient pads to whole chunks
  both_cpu = jax.grad(lambda x, k: (conv.conv2d_same(x, k) ** 2).sum(), argnums=(0, 1))
  assert flops.count_flops(both_cpu, x, kernel).total == pytest.approx(3 * forward, rel=0.1)


def test_grouped_convolution_and_matmul_match_the_closed_form():
  x, kernel = _shape(B, H, W, 6), _shape(K, K, 2, 9)  # 3 groups of 2 -> 3
  grouped = lambda x, k: jax.lax.conv_general_dilated(
      x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=3)
  assert flops.count_flops(grouped, x, kernel).total == 2 * B * H * W * 9 * K * K * 2
  a, b = _shape(4, 3, 5), _shape(4, 5, 6)  # batched [4] (3x5 @ 5x6)
  count = flops.count_flops(lambda a, b: jnp.einsum("bij,bjk->bik", a, b), a, b)
  assert (count.matmul, count.conv) == (2 * 4 * 3 * 6 * 5, 0)


@pytest.mark.parametrize("name,opts", [
    ("rrdbnet", dict(num_feat=8, num_block=3, num_grow_ch=4)),
    ("msrresnet", dict(num_feat=8, num_block=4)),
])
def test_scanned_trunk_counts_every_block(name, opts):
  x = _shape(1, 8, 8, 3)
  unrolled = models.MODELS[name](scale=4, scan_blocks=False, **opts)
  scanned = models.MODELS[name](scale=4, scan_blocks=True, **opts)
  variables = jax.eval_shape(unrolled.init, jax.random.key(0), x)
  count_unrolled = flops.count_flops(unrolled.apply, variables, x)
  count_scanned = flops.count_flops(scanned.apply, variables, x)
  assert count_scanned.total == count_unrolled.total > 0
  fewer = models.MODELS[name](scale=4, scan_blocks=True, **dict(opts, num_block=1))
  assert flops.count_flops(fewer.apply, jax.eval_shape(fewer.init, jax.random.key(0), x),
                           x).total < count_scanned.total


def test_train_step_counts_the_backward_pass():
  model = models.MODELS["msrresnet"](scale=2, num_feat=8, num_block=2)
  x = _shape(2, 8, 8, 3)
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  forward = flops.count_flops(model.apply, variables, x).total
  loss = lambda v, x: model.apply(v, x).mean()
  step = flops.count_flops(jax.grad(loss), variables, x).total
  # forward + input gradients (none for the first conv) + filter gradients: just under 3x
  assert 2.5 * forward < step < 3 * forward


def test_peak_of_known_and_unknown_devices():
  assert flops.peak_tflops("NVIDIA H200", "bfloat16") == 989.0
  assert flops.peak_tflops("cpu", "bfloat16") is None
