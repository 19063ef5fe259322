"""What a checkpoint save costs the training loop: blocking vs orbax async save; prints JSON.

  PYTHONPATH=. python bench/checkpoint_save.py [--model=rrdbnet] [--saves=3] [--steps_between=4]

Trains `--model` (default RRDBNet 64x23, the ESRGAN generator: a 270 MB train state of params,
EMA and Adam moments) on one random batch and saves a checkpoint every `--steps_between` steps,
first with `checkpointing.save(wait=True)` (the loop waits for the files) and then with
`wait=False` (it waits only for the copy to host memory). Reports the loop's time for the
save itself and for the step after it (a background write competes with it), against the
median step without a save. No TensorFlow: runs on the device machine.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxsr import builders  # noqa: E402
from jaxsr import checkpointing  # noqa: E402
from jaxsr import config_base  # noqa: E402
from jaxsr import sharding  # noqa: E402

MODELS = {"rrdbnet": dict(num_feat=64, num_block=23, num_grow_ch=32),
          "msrresnet": dict(num_feat=64, num_block=16)}


def _config(model: str, batch_size: int, gt_size: int):
  c = config_base.base_config()
  c.scale, c.batch_size = 4, batch_size
  c.model.name = model
  for key, value in MODELS[model].items():
    c.model[key] = value
  c.data.gt_size = gt_size
  c.ema_decay = 0.999
  return c


def _block(tree):
  jax.block_until_ready(tree)
  return tree


def measure(model: str, batch_size: int, gt_size: int, saves: int, steps_between: int) -> dict:
  config = _config(model, batch_size, gt_size)
  mesh = sharding.create_mesh()
  comps = builders.components_from_config(config)
  state = builders.build_state(config, comps, mesh)
  step_fn, loss_variables = builders.jit_train_step(config, comps, mesh)
  rng = np.random.default_rng(0)
  lr_side = gt_size // config.scale
  batch = sharding.to_global({
      "lr": rng.random((batch_size, lr_side, lr_side, 3), np.float32),
      "hr": rng.random((batch_size, gt_size, gt_size, 3), np.float32)}, mesh)
  state, _ = _block(step_fn(state, batch, loss_variables))  # Compile.
  state_bytes = sum(x.nbytes for x in jax.tree.leaves(state) if hasattr(x, "nbytes"))
  result = {"model": model, "batch_size": batch_size, "gt_size": gt_size,
            "state_mb": round(state_bytes / 2**20, 1), "device": str(jax.devices()[0].device_kind),
            "device_count": jax.device_count()}
  step = 1
  for mode in ("blocking", "async"):
    workdir = tempfile.mkdtemp(prefix="jaxsr_ckpt_bench_")
    manager = checkpointing.create_manager(workdir, keep=2)
    plain, save_s, after_s = [], [], []
    for _ in range(saves):
      for i in range(steps_between):
        start = time.perf_counter()
        state, _ = _block(step_fn(state, batch, loss_variables))
        step += 1
        (after_s if i == 0 and save_s else plain).append(time.perf_counter() - start)
      start = time.perf_counter()
      checkpointing.save(manager, step, state, {"next_step": step}, wait=mode == "blocking")
      save_s.append(time.perf_counter() - start)
    start = time.perf_counter()
    checkpointing.wait_until_saved(manager)
    final_wait = time.perf_counter() - start
    manager.close()
    shutil.rmtree(workdir, ignore_errors=True)
    step_s = statistics.median(plain)
    result[mode] = {
        "step_s": round(step_s, 4), "save_in_loop_s": round(statistics.median(save_s), 4),
        "step_after_save_s": round(statistics.median(after_s), 4) if after_s else None,
        "loop_cost_per_save_s": round(statistics.median(save_s) + (
            statistics.median(after_s) - step_s if after_s else 0.0), 4),
        "final_wait_s": round(final_wait, 4)}
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", choices=sorted(MODELS), default="rrdbnet")
  parser.add_argument("--batch_size", type=int, default=1)
  parser.add_argument("--gt_size", type=int, default=32)
  parser.add_argument("--saves", type=int, default=3)
  parser.add_argument("--steps_between", type=int, default=4)
  args = parser.parse_args()
  print(json.dumps(measure(args.model, args.batch_size, args.gt_size, args.saves,
                           args.steps_between), indent=2))


if __name__ == "__main__":
  main()
