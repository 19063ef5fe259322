"""The same train step on 1 CPU device and on 2 / 4 fake CPU devices (batch sharded over `data`)."""

import json
import os
import sys

import jax
import numpy as np
import pytest

from jaxsr import checkpointing
from jaxsr import sharding
from jaxsr import train

from tests import utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MULTI_DEVICE_SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
import jax
import numpy as np
from jaxsr import sharding, train
from tests import utils
assert jax.device_count() == {n}, jax.devices()
mesh = sharding.create_mesh()
assert mesh.shape == {{'data': {n}}}
config = utils.{config_fn}({train_dir!r})
config.num_train_steps, config.checkpoint_every_steps = 3, 3
state = train.train_and_evaluate(config, {workdir!r})
assert len(state.params['conv_first']['kernel'].sharding.device_set) == {n}
learned = {{k: getattr(state, k) for k in {learned!r}}}
np.savez({out!r}, *jax.tree.leaves(jax.device_get(learned)))
"""
# What training changes: parameters and BatchNorm / spectral-norm statistics.
LEARNED = {"tiny_config": ("params", "model_state"),
           "tiny_gan_config": ("params", "model_state", "d_params", "d_model_state")}


def final_learned(workdir, keys):
  manager = checkpointing.create_manager(str(workdir), read_only=True)
  state, _ = checkpointing.restore_on_this_host(
      manager, 3, sharding.replicated(sharding.create_mesh()))
  return jax.device_get({k: state[k] for k in keys})


@pytest.mark.parametrize("config_fn,num_devices", [
    ("tiny_config", 2), ("tiny_config", 4),
    # GAN: BatchNorm in G and D sees the global batch, so 2 devices equal 1.
    ("tiny_gan_config", 2)])
def test_multi_device_training_matches_single_device(tmp_path, config_fn, num_devices):
  train_dir = utils.make_image_folder(tmp_path / "train", count=5, size=(32, 32), seed=3)
  config = getattr(utils, config_fn)(train_dir)
  config.num_train_steps, config.checkpoint_every_steps = 3, 3
  train.train_and_evaluate(config, str(tmp_path / "one"))

  script = MULTI_DEVICE_SCRIPT.format(repo=REPO, n=num_devices, train_dir=train_dir,
                                      workdir=str(tmp_path / "many"), config_fn=config_fn,
                                      learned=LEARNED[config_fn],
                                      out=str(tmp_path / "many.npz"))
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={num_devices}")
  result = utils.run_process([sys.executable, "-c", script], env=env)
  assert result.returncode == 0, result.stderr[-4000:]

  one = jax.tree.leaves(final_learned(tmp_path / "one", LEARNED[config_fn]))
  with np.load(tmp_path / "many.npz") as saved:
    many = [saved[f"arr_{i}"] for i in range(len(saved.files))]
  assert len(one) == len(many)
  # Gradients and BatchNorm statistics summed over devices in another order: equal up to rounding.
  ops = utils.network_ops(one) + config.batch_size * config.data.gt_size**2 * 3
  utils.assert_trained_close(one, many, ops, config.optim.learning_rate, config.num_train_steps)


def test_batch_not_divisible_by_devices_fails_before_compile(tmp_path):
  train_dir = utils.make_image_folder(tmp_path / "train", count=3, size=(32, 32))
  config = utils.tiny_config(train_dir)
  config.batch_size = 3
  script = ("import sys; sys.path.insert(0, %r)\nfrom jaxsr import train\nfrom tests import utils\n"
            "c = utils.tiny_config(%r); c.batch_size = 3\ntrain.train_and_evaluate(c, %r)\n"
            % (REPO, train_dir, str(tmp_path / "w")))
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
  result = utils.run_process([sys.executable, "-c", script], env=env)
  assert result.returncode != 0
  assert "batch_size=3 is not divisible by the 2 devices" in result.stderr
  assert not os.path.exists(tmp_path / "w" / "checkpoints")


COLLECTIVES_IN_LOOPS_SCRIPT = """
import importlib.util, json, sys
sys.path.insert(0, {repo!r})
from tests import utils
spec = importlib.util.spec_from_file_location("compile_size", {repo!r} + "/bench/compile_size.py")
compile_size = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compile_size)
config = utils.{config_fn}({train_dir!r})
config.model.update({model!r})
step, args = compile_size.step_and_args(config)
text = step.trace(*args).lower().compile().as_text()
print(json.dumps({{**compile_size.hlo_counts(text), **compile_size.hlo_collectives(text)}}))
"""


@pytest.mark.parametrize("config_fn,model", [
    # The seed GAN's CPU filter gradient loops over chunks of rows (ops/conv.py); MSRResNet's
    # 3 blocks are a scanned trunk on one device.
    ("tiny_gan_config", {}), ("tiny_config", {"num_block": 3})])
def test_data_parallel_cpu_step_sums_across_devices_outside_loops(tmp_path, config_fn, model):
  # XLA:CPU does not order a loop's collectives against the others: a cross-device gradient sum
  # inside a loop deadlocked this 2-device GAN step in CI (sharding.cpu_data_parallel).
  train_dir = utils.make_image_folder(tmp_path / "train", count=2, size=(32, 32))
  script = COLLECTIVES_IN_LOOPS_SCRIPT.format(repo=REPO, config_fn=config_fn,
                                              train_dir=train_dir, model=model)
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
  result = utils.run_process([sys.executable, "-c", script], env=env)
  assert result.returncode == 0, result.stderr[-4000:]
  counts = json.loads(result.stdout.splitlines()[-1])
  assert counts["collectives"] > 0  # The step does sum its gradients across the devices.
  assert counts["collectives_in_loops"] == 0, counts
  if config_fn == "tiny_gan_config":
    assert counts["hlo_while"] > 0  # The filter gradient's loop is there, without a collective.
