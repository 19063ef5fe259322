"""Seconds per PSNR train step (jit, donated state, batch sharded over the mesh); prints JSON.

  python bench/train_step.py                       # MSRResNet x4, batch 16, LR patch 32
  python bench/train_step.py --model=rrdbnet --batch=8 --patch=32 --dtype=bfloat16
"""

import json
import statistics
import time

from absl import app
from absl import flags
import jax
import numpy as np

from jaxsr import builders
from jaxsr import config_base
from jaxsr import losses
from jaxsr import sharding
from jaxsr import steps

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "msrresnet", "Model name in the registry.")
flags.DEFINE_integer("scale", 4, "Upscaling factor.")
flags.DEFINE_integer("batch", 16, "Global batch size.")
flags.DEFINE_integer("patch", 32, "LR patch side (HR patch = patch * scale).")
flags.DEFINE_string("dtype", "float32", "Computation dtype: float32 | bfloat16.")
flags.DEFINE_integer("warmup", 2, "Untimed steps after compilation.")
flags.DEFINE_integer("steps", 10, "Timed steps.")


def main(_):
  config = config_base.base_config()
  config.model.name, config.scale, config.dtype = FLAGS.model, FLAGS.scale, FLAGS.dtype
  config.batch_size, config.data.gt_size = FLAGS.batch, FLAGS.patch * FLAGS.scale
  config_base.validate(config, jax.device_count())
  mesh = sharding.create_mesh()
  model = builders.model_from_config(config)
  tx, schedule = builders.optimizer_from_config(config)
  state = builders.build_state(config, model, tx, mesh)
  step_fn = jax.jit(
      steps.make_psnr_train_step(builders.make_apply_fn(model), tx, losses.l1_loss, 1.0,
                                 config.ema_decay, schedule),
      in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh)),
      out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)), donate_argnums=(0,))
  rng = np.random.default_rng(0)
  hr_side = FLAGS.patch * FLAGS.scale
  batch = sharding.to_global({
      "lr": rng.random((FLAGS.batch, FLAGS.patch, FLAGS.patch, 3), np.float32),
      "hr": rng.random((FLAGS.batch, hr_side, hr_side, 3), np.float32)}, mesh)

  compiled = step_fn.lower(state, batch).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  gflop = float(cost.get("flops", float("nan"))) / 1e9
  for _ in range(FLAGS.warmup):
    state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  times = []
  for _ in range(FLAGS.steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - start)
  median = statistics.median(times)
  print(json.dumps({
      "model": FLAGS.model, "scale": FLAGS.scale, "batch": FLAGS.batch, "lr_patch": FLAGS.patch,
      "dtype": FLAGS.dtype, "device": str(jax.devices()[0].device_kind),
      "device_count": jax.device_count(), "median_s": round(median, 4),
      "patches_per_s": round(FLAGS.batch / median, 2), "gflop_per_step": round(gflop, 2),
      "gflop_per_s": round(gflop / median, 2)}))


if __name__ == "__main__":
  app.run(main)
