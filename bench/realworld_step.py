"""The real-world train step with and without its degradations: the pipeline's share of a step.

  python bench/realworld_step.py                        # Real-ESRNet x4plus: RRDBNet 64x23,
                                                        # batch 12, HR crop 400, GT 256
  python bench/realworld_step.py --config=configs/realesrgan_x4plus.py --batch=4

Times, on one random uint8 HR batch (medians of --steps after --warmup, each blocked on):
`pairs` (the jitted degradation stage: degradations, crop, pool, USM targets), `step` (the
PSNR / GAN step on the pairs it made) and `total` (both, as the trainer runs them); prints one
JSON line with `pairs_share` = pairs / total. No TensorFlow (runs on a device machine with
`PYTHONPATH=.`). A GAN config needs `--config.loss.vgg_weights` or gets random VGG19 weights.
"""

import importlib.util
import json
import os
import shutil
import statistics
import tempfile
import time

from absl import app
from absl import flags
import jax
import numpy as np
import step_timer  # bench/step_timer.py

from jaxsr import builders
from jaxsr import config_base
from jaxsr import sharding
from jaxsr.degradations import pairs
from jaxsr.models import vgg

flags.DEFINE_string("config", "configs/realesrnet_x4plus.py", "A real-world config file.")
flags.DEFINE_integer("batch", 12, "Global batch.")
flags.DEFINE_integer("warmup", 1, "Untimed calls of each part (>= 1: the first compiles).")
flags.DEFINE_integer("steps", 3, "Timed steps.")
flags.DEFINE_enum("dtype", None, ["float32", "bfloat16"],
                  "Computation dtype (default: the config's).")
flags.DEFINE_bool("random_vgg", False, "A GAN config without VGG19 weights gets random ones "
                  "(timing as with real weights) instead of losing its perceptual loss.")
flags.DEFINE_bool("tiny", False, "A few narrow blocks of the config's networks, GT 64 from "
                  "crops of 96 (smoke runs).")
FLAGS = flags.FLAGS


def _load(path: str):
  spec = importlib.util.spec_from_file_location("bench_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def _median_seconds(fn, warmup: int, steps: int) -> float:
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(_):
  if FLAGS.warmup < 1:
    raise app.UsageError("--warmup must be >= 1 (the first call of each part compiles it)")
  config = _load(FLAGS.config)
  config.batch_size = FLAGS.batch
  config.degradation.queue_size = 15 * FLAGS.batch  # Real-ESRGAN: 180 pairs for batch 12.
  if FLAGS.dtype:
    config.dtype = FLAGS.dtype
  if FLAGS.tiny:
    step_timer.shrink(config)
    config.data.gt_size, config.data.crop_pad_size = 64, 96
  vgg_dir = tempfile.mkdtemp(prefix="realworld_step_vgg_")
  if config_base.is_gan(config) and not config.loss.vgg_weights:
    if FLAGS.random_vgg:
      config.loss.vgg_weights = os.path.join(vgg_dir, vgg.KERAS_VGG19_FILE)
      step_timer.write_random_vgg19_h5(config.loss.vgg_weights)
    else:
      config.loss.perceptual_weight = 0.0  # No VGG weights offline: time G and D only.
  config_base.validate(config, jax.device_count())
  mesh = sharding.create_mesh()
  comps = builders.components_from_config(config)
  state = builders.build_state(config, comps, mesh)
  train_step, loss_variables = builders.jit_train_step(config, comps, mesh)
  size = config.data.crop_pad_size
  hr = np.random.default_rng(0).integers(0, 256, (config.batch_size, size, size, 3), np.uint8)
  batch = sharding.to_global({"hr": hr}, mesh)

  make_pairs = jax.jit(pairs.make_pair_fn(config))
  pool, pair_batch = make_pairs(state.pool, batch["hr"], state.step)
  state = state.replace(pool=pool)
  pair_step = jax.jit(builders.train_step_from_config(config, comps)[0])

  holder = {"state": state}

  def run_total():
    holder["state"], metrics = train_step(holder["state"], batch, loss_variables)
    return metrics

  def run_step():
    holder["state"], metrics = pair_step(holder["state"], pair_batch, loss_variables)
    return metrics

  start = time.perf_counter()
  jax.block_until_ready(run_total())
  compile_s = time.perf_counter() - start
  pairs_s = _median_seconds(
      lambda: make_pairs(holder["state"].pool, batch["hr"], holder["state"].step),
      FLAGS.warmup, FLAGS.steps)
  step_s = _median_seconds(run_step, FLAGS.warmup, FLAGS.steps)
  total_s = _median_seconds(run_total, FLAGS.warmup, FLAGS.steps)
  print(json.dumps({
      "config": FLAGS.config, "model": config.model.name, "batch": config.batch_size,
      "crop": size, "gt_size": config.data.gt_size, "scale": config.scale,
      "dtype": config.dtype, "perceptual_weight": config.loss.perceptual_weight,
      "device": str(jax.devices()[0].device_kind), "device_count": jax.device_count(),
      "compile_s": round(compile_s, 1), "pairs_s": round(pairs_s, 3),
      "step_s": round(step_s, 3), "total_s": round(total_s, 3),
      "pairs_share": round(pairs_s / total_s, 3)}))
  shutil.rmtree(vgg_dir, ignore_errors=True)


if __name__ == "__main__":
  app.run(main)
