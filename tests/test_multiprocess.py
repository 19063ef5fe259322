"""Two JAX processes on 127.0.0.1 (gloo collectives) train the same model as one process (each
feeds its half of the global batch), and stop together when one of them is preempted."""

import os
import re
import shutil
import signal
import sys
import time

import jax
import numpy as np
import pytest

from jaxsr import checkpointing
from jaxsr import sharding
from jaxsr import train

from tests import utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def final_params(workdir, step):
  manager = checkpointing.create_manager(str(workdir), read_only=True)
  state, _ = checkpointing.restore_on_this_host(
      manager, step, sharding.replicated(sharding.create_mesh()))
  return jax.tree.leaves(jax.device_get(state["params"]))


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_two_processes_match_one(tmp_path):
  train_dir = utils.make_image_folder(tmp_path / "train", count=6, size=(40, 48), seed=5)
  config = utils.tiny_config(train_dir)
  config.num_train_steps = config.checkpoint_every_steps = 4
  train.train_and_evaluate(config, str(tmp_path / "one"))

  config_path = utils.tiny_config_file(tmp_path / "mp_config.py", train_dir)
  result = utils.run_process(
      ["bash", os.path.join(REPO, "launch", "local_multiprocess.sh"), "2", config_path,
       str(tmp_path / "two"), "--config.num_train_steps=4", "--config.checkpoint_every_steps=4"],
      timeout=utils.LONG)
  assert result.returncode == 0, result.stderr[-4000:]
  assert "JAX process 1/2" in result.stderr

  one, two = final_params(tmp_path / "one", 4), final_params(tmp_path / "two", 4)
  assert len(one) == len(two)
  # Gradients summed over processes in another order: equal up to rounding.
  ops = utils.network_ops(one) + config.batch_size * config.data.gt_size**2 * 3
  utils.assert_trained_close(one, two, ops, config.optim.learning_rate, steps=4)


def _start_pair(config_path, workdir, *overrides):
  """Two `jaxsr.main` processes joined over 127.0.0.1 (gloo), as LoggedProcesses."""
  port = utils.free_port()
  return [utils.LoggedProcess(
      [sys.executable, "-m", "jaxsr.main", f"--config={config_path}", f"--workdir={workdir}",
       f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}",
       *overrides]) for i in range(2)]


def test_sigterm_to_one_process_stops_both_at_the_same_step_and_resumes(tmp_path):
  """JAX's preemption sync: SIGTERM to process 1 only; both save one checkpoint of the same step
  and exit 0; the same command then resumes from it to the 1-process result."""
  train_dir = utils.make_image_folder(tmp_path / "train", count=6, size=(40, 48), seed=5)
  config_path = utils.tiny_config_file(tmp_path / "config.py", train_dir)
  workdir = tmp_path / "two"
  pair = _start_pair(config_path, workdir, "--config.num_train_steps=100000",
                     "--config.checkpoint_every_steps=100000", "--config.log_every_steps=1")
  with pair[0], pair[1]:
    pair[1].wait_for("step 3/100000", timeout=utils.LONG)
    pair[1].proc.send_signal(signal.SIGTERM)
    codes = utils.wait_all(pair, timeout=utils.LONG)
  logs = [p.log for p in pair]
  assert codes == [0, 0], logs[0][-2000:] + logs[1][-2000:]
  stops = [re.findall(r"every process stops at step (\d+)", log) for log in logs]
  assert len(stops[0]) == 1 and stops[0] == stops[1], stops
  stop = int(stops[0][0])
  assert checkpointing.create_manager(str(workdir), read_only=True).all_steps() == [stop]
  assert all("Traceback" not in log and f"Stopped at step {stop}" in log for log in logs)

  end = stop + 2
  resumed = _start_pair(config_path, workdir, f"--config.num_train_steps={end}",
                        "--config.checkpoint_every_steps=100000")
  assert utils.wait_all(resumed, timeout=utils.LONG) == [0, 0], resumed[0].log[-3000:]
  assert all(f"Resumed from step {stop}" in p.log for p in resumed)

  config = utils.tiny_config(train_dir)
  config.num_train_steps = end
  train.train_and_evaluate(config, str(tmp_path / "one"))
  one = final_params(tmp_path / "one", end)
  ops = utils.network_ops(one) + config.batch_size * config.data.gt_size**2 * 3
  utils.assert_trained_close(one, final_params(workdir, end), ops, config.optim.learning_rate,
                             steps=end)


def test_killing_one_process_ends_the_other_with_a_clear_error(tmp_path):
  """SIGKILL to process 1: process 0's next collective fails; it exits 1 with one message naming
  the likely cause, promptly (not after the coordination service's heartbeat timeout)."""
  train_dir = utils.make_image_folder(tmp_path / "train", count=6, size=(40, 48), seed=5)
  config_path = utils.tiny_config_file(tmp_path / "config.py", train_dir)
  pair = _start_pair(config_path, tmp_path / "run", "--config.num_train_steps=100000",
                     "--config.checkpoint_every_steps=100000", "--config.log_every_steps=1")
  with pair[0], pair[1]:
    pair[1].wait_for("step 3/100000", timeout=utils.LONG)
    pair[1].proc.kill()
    killed_at = time.time()
    code = pair[0].wait()
  log = pair[0].log
  assert code == 1, log[-3000:]
  assert "Another process has probably crashed or been killed" in log, log[-3000:]
  assert "Traceback" not in log, log[-3000:]
  assert time.time() - killed_at < 60
