"""Two JAX processes on 127.0.0.1 (gloo collectives), started by launch/local_multiprocess.sh,
train the same model as one process: each feeds its half of the global batch."""

import os
import shutil
import subprocess
import sys

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

  config_path = tmp_path / "mp_config.py"
  config_path.write_text(
      "import sys\nsys.path.insert(0, %r)\nfrom tests import utils\n"
      "def get_config():\n  c = utils.tiny_config(%r)\n"
      "  c.num_train_steps = c.checkpoint_every_steps = 4\n  return c\n" % (REPO, train_dir))
  env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
             PYTHONPATH=REPO)
  env.pop("XLA_FLAGS", None)
  result = subprocess.run(
      ["bash", os.path.join(REPO, "launch", "local_multiprocess.sh"), "2", str(config_path),
       str(tmp_path / "two")], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-4000:]
  assert "JAX process 1/2" in result.stderr

  one, two = final_params(tmp_path / "one", 4), final_params(tmp_path / "two", 4)
  assert len(one) == len(two)
  for a, b in zip(one, two):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
