"""Depthwise 3x3 convolution on XLA:CPU: `conv_ops.depthwise_conv2d_same` (on CPU a sum of
shifted inputs) against XLA's grouped convolution (`feature_group_count = C`), the forward pass
and the gradient of `--blocks` blocks `tanh(dwconv(x))`, unrolled and in a `lax.scan` (as the
scanned trunks of OmniSR and DAT run them). One JSON line per (implementation, shape).

  python bench/depthwise.py                          # [8, 64, 64, 192] and [1, 64, 64, 64]
  python bench/depthwise.py --shapes=4x64x64x128 --runs=5

Seconds are medians of `--runs` after one warm-up call (compile excluded).
"""

import json
import statistics
import time

from absl import app
from absl import flags
import jax
from jax import lax
import jax.numpy as jnp

from jaxsr.ops import conv as conv_ops
from peer_process import cpu_info  # bench/

FLAGS = flags.FLAGS
flags.DEFINE_list("shapes", ["8x64x64x192", "1x64x64x64"], "input shapes BxHxWxC")
flags.DEFINE_integer("blocks", 3, "blocks in the gradient programs")
flags.DEFINE_integer("runs", 3, "timed calls per program (median)")


def grouped_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """XLA's grouped convolution, with XLA's gradients: `depthwise_conv2d_same` as GPUs, TPUs
  and exporters run it (traced inside `conv_ops.portable()`). `[B, H, W, C]` x `[3, 3, 1, C]`."""
  with conv_ops.portable():
    return conv_ops.depthwise_conv2d_same(x, kernel)


def seconds(fn, *args) -> float:
  """Median wall seconds of `fn(*args)` (jitted, after one warm-up call)."""
  fn = jax.jit(fn)
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(FLAGS.runs):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return round(statistics.median(times), 4)


def measure(conv, x: jax.Array, kernels: jax.Array) -> dict[str, float]:
  """Forward of one block; gradient of `len(kernels)` blocks, scanned and unrolled."""
  def scanned(ks, x):
    y, _ = lax.scan(lambda x, k: (jnp.tanh(conv(x, k)), None), x, ks)
    return jnp.sum(y**2)

  def unrolled(ks, x):
    for k in ks:
      x = jnp.tanh(conv(x, k))
    return jnp.sum(x**2)

  return {"forward_s": seconds(conv, x, kernels[0]),
          "grad_unrolled_s": seconds(jax.grad(unrolled), kernels, x),
          "grad_scanned_s": seconds(jax.grad(scanned), kernels, x)}


def main(argv):
  del argv
  for shape in FLAGS.shapes:
    b, h, w, c = (int(v) for v in shape.split("x"))
    key_x, key_k = jax.random.split(jax.random.key(0))
    x = jax.random.normal(key_x, (b, h, w, c))
    kernels = 0.3 * jax.random.normal(key_k, (FLAGS.blocks, 3, 3, 1, c))
    for name, conv in (("xla_grouped_conv", grouped_conv),
                       ("jaxsr_depthwise", conv_ops.depthwise_conv2d_same)):
      print(json.dumps({"bench": "depthwise", "impl": name, "shape": [b, h, w, c],
                        "blocks": FLAGS.blocks, "device": jax.devices()[0].device_kind,
                        **cpu_info(), "jax": jax.__version__,
                        **measure(conv, x, kernels)}), flush=True)


if __name__ == "__main__":
  app.run(main)
