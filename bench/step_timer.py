"""Times a config's jit-compiled train step on random data; shared by the step benchmarks."""

import statistics
import time
from typing import Any, Dict

import jax
import ml_collections
import numpy as np

from jaxsr import builders
from jaxsr import config_base
from jaxsr import sharding


def time_train_step(config: ml_collections.ConfigDict, warmup: int, steps: int) -> Dict[str, Any]:
  """Builds the state and train step of `config` (PSNR or GAN), runs `warmup` untimed and
  `steps` timed steps on one random batch; returns {median_s, patches_per_s, gflop_per_step,
  gflop_per_s, device, device_count}. GFLOP come from XLA's cost analysis, which counts a
  loop body once (the CPU conv filter gradient is a loop), so they are a lower bound on CPU."""
  config_base.validate(config, jax.device_count())
  mesh = sharding.create_mesh()
  comps = builders.components_from_config(config)
  state = builders.build_state(config, comps, mesh)
  step_fn, loss_variables = builders.jit_train_step(config, comps, mesh)
  rng = np.random.default_rng(0)
  hr_side, lr_side = config.data.gt_size, config.data.gt_size // config.scale
  batch = sharding.to_global({
      "lr": rng.random((config.batch_size, lr_side, lr_side, 3), np.float32),
      "hr": rng.random((config.batch_size, hr_side, hr_side, 3), np.float32)}, mesh)

  compiled = step_fn.lower(state, batch, loss_variables).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  gflop = float(cost.get("flops", float("nan"))) / 1e9
  for _ in range(warmup):
    state, metrics = compiled(state, batch, loss_variables)
  jax.block_until_ready(metrics if warmup else state)
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batch, loss_variables)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - start)
  median = statistics.median(times)
  return {"device": str(jax.devices()[0].device_kind), "device_count": jax.device_count(),
          "median_s": round(median, 4), "patches_per_s": round(config.batch_size / median, 2),
          "gflop_per_step": round(gflop, 2), "gflop_per_s": round(gflop / median, 2)}
