"""Times a config's jit-compiled train step on random data; shared by the step benchmarks."""

import statistics
import time
from typing import Any, Dict

import jax
import ml_collections
import numpy as np

from jaxsr import builders
from jaxsr import config_base
from jaxsr import flops
from jaxsr import sharding
from jaxsr.models import vgg


def write_random_vgg19_h5(path: str) -> None:
  """Random VGG19 conv weights (PyTorch's default init) in the Keras HDF5 layout: benchmarks
  run offline, and a step's time does not depend on the weights' values."""
  variables = vgg.TorchvisionFeatures(("conv5_4",)).init(jax.random.key(0),
                                                          np.zeros((1, 16, 16, 3), np.float32))
  vgg.save_keras_h5(path, jax.device_get(variables["params"]))


def shrink(config: ml_collections.ConfigDict) -> None:
  """`config`'s generator (and discriminator) with a few narrow blocks, in place: smoke runs
  of a benchmark, the same code on tiny shapes."""
  m = config.model
  if m.name == "swinir":
    m.embed_dim, m.depths, m.num_heads, m.window_size = 12, (2,), (2,), 4
  else:
    m.num_feat, m.num_block = 8, 1
    if m.name == "rrdbnet":
      m.num_grow_ch = 4
  if "discriminator" in config and "num_feat" in config.discriminator:
    config.discriminator.num_feat = 8


def time_train_step(config: ml_collections.ConfigDict, warmup: int, steps: int) -> Dict[str, Any]:
  """Builds the state and train step of `config` (PSNR or GAN), runs `warmup` untimed and
  `steps` timed steps on one random batch; returns {median_s, patches_per_s, gflop_per_step,
  gflop_per_s, lower_s, compile_s, mfu, device, device_count}. GFLOP are analytic
  (`jaxsr.flops`: the step's convolutions and matmuls, backward pass included, counted from
  their shapes); `mfu` divides their rate by the device's dense peak for the config's dtype
  (float32 against the TF32 peak: XLA's default precision lets cuDNN / cuBLAS use TF32;
  None for an unknown device)."""
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

  gflop = flops.count_flops(step_fn, state, batch, loss_variables).total / 1e9
  start = time.perf_counter()
  lowered = step_fn.lower(state, batch, loss_variables)
  lower_s = time.perf_counter() - start
  compiled = lowered.compile()
  compile_s = time.perf_counter() - start - lower_s
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
  device = str(jax.devices()[0].device_kind)
  peak = flops.peak_tflops(device, "bfloat16" if config.dtype == "bfloat16" else "tf32")
  achieved = gflop / median / 1e3 / jax.device_count()
  return {"device": device, "device_count": jax.device_count(),
          "median_s": round(median, 4), "patches_per_s": round(config.batch_size / median, 2),
          "gflop_per_step": round(gflop, 2), "gflop_per_s": round(gflop / median, 2),
          "lower_s": round(lower_s, 2), "compile_s": round(compile_s, 2),
          "tflop_s_per_device": round(achieved, 3),
          "mfu": round(achieved / peak, 4) if peak else None}
