"""Fault injection for `jaxsr.main`: crashes and failed writes at chosen points; prints JSON.

Inject one fault into one training process (used by tests/test_faults.py):

  python bench/fault_injection.py --fault=kill_at_commit --at_step=4 -- \
      --config=configs/quickstart.py --workdir=/tmp/run
    kill_at_commit: SIGKILL this process when the checkpoint of step 4 is written but not yet
      committed (orbax's rename of its temporary directory: the middle of an async save).
    disk_full_at_commit: the same write fails with ENOSPC (what a full disk raises).

The SIGKILL suite (the long one; RELIABILITY.md):

  python bench/fault_injection.py --suite=sigkill --runs=10 --seed=0 [--workdir=/tmp/faults]

trains a small quickstart run once straight and once while being SIGKILLed at `runs` random
points (after 3-15 steps, during a background checkpoint write, or at the commit
of a checkpoint), restarting the same command after each kill; it reports the work lost per
kill and whether the final parameters are bitwise those of the straight run.
"""

import argparse
import errno
import json
import os
import random
import re
import runpy
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# Small enough for ~0.1 s steps on 2 CPU cores, long enough for 10 kills.
SUITE_OVERRIDES = (
    "--config.num_train_steps=60", "--config.checkpoint_every_steps=6",
    "--config.log_every_steps=1", "--config.eval_every_steps=1000", "--config.eval.datasets=",
    "--config.batch_size=4", "--config.model.num_feat=8", "--config.model.num_block=1",
    "--config.keep_checkpoints=2")


def install_fault(fault: str, at_step: int) -> None:
  """Patches orbax's commit of a checkpoint directory (the rename of the temporary directory
  that holds the complete checkpoint) to fail at `at_step`."""
  from orbax.checkpoint._src.path import atomicity  # pylint: disable=g-import-not-at-top
  commit = atomicity.AtomicRenameTemporaryPath.finalize

  async def finalize(self, *args, **kwargs):
    if self._final_path.name == str(at_step):  # pylint: disable=protected-access
      if fault == "kill_at_commit":
        print(f"fault_injection: SIGKILL while committing step {at_step}", file=sys.stderr,
              flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self._final_path))
    return await commit(self, *args, **kwargs)

  atomicity.AtomicRenameTemporaryPath.finalize = finalize


def run_main_with_fault(fault: str, at_step: int, main_args) -> None:
  install_fault(fault, at_step)
  sys.argv = ["jaxsr.main", *main_args]
  runpy.run_module("jaxsr.main", run_name="__main__", alter_sys=True)


def _main_cmd(workdir: str, *extra: str):
  return [sys.executable, "-m", "jaxsr.main", "--config=configs/quickstart.py",
          f"--workdir={workdir}", *SUITE_OVERRIDES, *extra]


def _env():
  return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)


def _last(pattern: str, text: str, default: int = 0) -> int:
  found = re.findall(pattern, text)
  return int(found[-1]) if found else default


def _kill_once(workdir: str, mode: str, rng: random.Random, log_path: str) -> dict:
  """Starts the run, SIGKILLs it per `mode`; returns what it had done."""
  ckpt_dir = os.path.join(workdir, "checkpoints")
  if mode == "commit":  # Inside the process, at the commit of the next checkpoint.
    done = [int(s) for s in os.listdir(ckpt_dir) if s.isdigit()] if os.path.isdir(ckpt_dir) else []
    at = (max(done, default=0) // 6 + 1) * 6
    cmd = [sys.executable, os.path.abspath(__file__), "--fault=kill_at_commit",
           f"--at_step={at}", "--", *_main_cmd(workdir)[3:]]
  else:
    cmd = _main_cmd(workdir)
  with open(log_path, "w") as log:
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=log, stderr=log)
  target = rng.randint(3, 15)  # Steps after the start: across 1-2 checkpoints.
  start_step, deadline = None, time.time() + 600
  stale = set(os.listdir(ckpt_dir)) if os.path.isdir(ckpt_dir) else set()
  while proc.poll() is None and time.time() < deadline:
    text = open(log_path).read()
    step = _last(r"step (\d+)/60", text, -1)
    if start_step is None and step >= 0:
      start_step = step
    if mode == "steps" and start_step is not None and step >= start_step + target:
      proc.send_signal(signal.SIGKILL)
    if mode == "write" and os.path.isdir(ckpt_dir) and any(
        "tmp" in name for name in set(os.listdir(ckpt_dir)) - stale):
      proc.send_signal(signal.SIGKILL)
    time.sleep(0.002)
  proc.wait()
  text = open(log_path).read()
  return {"mode": mode, "returncode": proc.returncode,
          "resumed_from": _last(r"Resumed from step (\d+)", text),
          "reached_step": _last(r"step (\d+)/60", text)}


def sigkill_suite(runs: int, seed: int, workdir: str) -> dict:
  """See the module docstring."""
  from jaxsr import checkpointing  # pylint: disable=g-import-not-at-top
  from jaxsr import sharding
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  shutil.rmtree(workdir, ignore_errors=True)
  os.makedirs(workdir)
  straight, killed = os.path.join(workdir, "straight"), os.path.join(workdir, "killed")
  subprocess.run(_main_cmd(straight), cwd=REPO, env=_env(), check=True, capture_output=True)
  rng = random.Random(seed)
  modes = ["steps"] * (runs - runs // 3 - runs // 5) + ["write"] * (runs // 3) + [
      "commit"] * (runs // 5)
  rng.shuffle(modes)
  kills = []
  for i, mode in enumerate(modes):
    kills.append(_kill_once(killed, mode, rng, os.path.join(workdir, f"kill{i}.log")))
    if kills[-1]["returncode"] == 0:
      break  # The run finished before the kill.
  final = subprocess.run(_main_cmd(killed), cwd=REPO, env=_env(), capture_output=True,
                         text=True)
  resumed = [k["resumed_from"] for k in kills[1:]] + [
      _last(r"Resumed from step (\d+)", final.stderr)]
  for kill, start in zip(kills, resumed):
    kill["lost_steps"] = max(kill["reached_step"] - start, 0)

  def params(run):
    manager = checkpointing.create_manager(run, read_only=True)
    state, _ = checkpointing.restore_on_this_host(
        manager, 60, sharding.replicated(sharding.create_mesh()))
    return jax.tree.leaves(jax.device_get(state["params"]))

  equal = all(np.array_equal(a, b) for a, b in zip(params(straight), params(killed)))
  return {"runs": len(kills), "kills": kills, "final_returncode": final.returncode,
          "max_lost_steps": max(k["lost_steps"] for k in kills), "checkpoint_every_steps": 6,
          "bitwise_equal": equal}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--fault", choices=["kill_at_commit", "disk_full_at_commit"])
  parser.add_argument("--at_step", type=int)
  parser.add_argument("--suite", choices=["sigkill"])
  parser.add_argument("--runs", type=int, default=10)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--workdir", default="/tmp/jaxsr_faults")
  args, rest = parser.parse_known_args()
  if args.fault:
    run_main_with_fault(args.fault, args.at_step, [a for a in rest if a != "--"])
  elif args.suite == "sigkill":
    print(json.dumps(sigkill_suite(args.runs, args.seed, args.workdir), indent=2))
  else:
    parser.error("give --fault (with --at_step and -- <jaxsr.main flags>) or --suite=sigkill")


if __name__ == "__main__":
  main()
