"""Injected faults around checkpoints and losses: a crash in the middle of an async save, a full
disk, a corrupt newest checkpoint, NaN/Inf in each loss term. Nothing trained is lost."""

import os
import shutil
import sys

import jax
import numpy as np
import pytest

from jaxsr import checkpointing
from jaxsr import losses
from jaxsr import steps
from jaxsr import train

from tests import utils
from tests.utils import assert_trees_equal, saved_state

FAULT_TOOL = os.path.join(utils.REPO, "bench", "fault_injection.py")


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
  return utils.make_image_folder(tmp_path_factory.mktemp("images") / "train", count=6,
                                 size=(40, 48), seed=3)


@pytest.fixture(scope="module")
def straight_run(train_dir, tmp_path_factory):
  """An uninterrupted 6-step run, checkpoints every 2 steps."""
  workdir = str(tmp_path_factory.mktemp("straight") / "run")
  config = utils.tiny_config(train_dir)
  config.checkpoint_every_steps = 2
  train.train_and_evaluate(config, workdir)
  return workdir


def _faulty_main(fault, at_step, config_path, workdir, *overrides):
  return utils.LoggedProcess([sys.executable, FAULT_TOOL, f"--fault={fault}",
                              f"--at_step={at_step}", "--", f"--config={config_path}",
                              f"--workdir={workdir}", "--config.checkpoint_every_steps=2",
                              *overrides])


def test_kill_during_async_save_keeps_previous_checkpoint_and_resumes_exactly(
    train_dir, straight_run, tmp_path):
  """SIGKILL while the background write of step 4 commits: step 2 stays usable, the half-written
  step 4 is ignored, and the same command resumes from 2 to the straight run's state."""
  config_path = utils.tiny_config_file(tmp_path / "config.py", train_dir)
  workdir = tmp_path / "run"
  crashed = _faulty_main("kill_at_commit", 4, config_path, workdir)
  assert crashed.wait() == -9, crashed.log[-3000:]
  ckpt_dir = workdir / "checkpoints"
  assert "2" in os.listdir(ckpt_dir) and "4" not in os.listdir(ckpt_dir)
  assert any("tmp" in name for name in os.listdir(ckpt_dir)), os.listdir(ckpt_dir)

  resumed = utils.LoggedProcess([sys.executable, "-m", "jaxsr.main", f"--config={config_path}",
                                 f"--workdir={workdir}", "--config.checkpoint_every_steps=2"])
  assert resumed.wait() == 0, resumed.log[-3000:]
  assert "Resumed from step 2" in resumed.log
  assert not any("tmp" in name for name in os.listdir(ckpt_dir)), os.listdir(ckpt_dir)
  assert_trees_equal(saved_state(straight_run, 6), saved_state(workdir, 6))


def test_disk_full_while_saving_is_one_clear_error_and_keeps_previous(train_dir, tmp_path):
  config_path = utils.tiny_config_file(tmp_path / "config.py", train_dir)
  workdir = tmp_path / "run"
  full = _faulty_main("disk_full_at_commit", 4, config_path, workdir)
  assert full.wait() != 0
  assert "Traceback" not in full.log, full.log[-3000:]
  assert "No space left on device" in full.log and "step 2 is intact" in full.log, full.log[-3000:]
  assert checkpointing.create_manager(str(workdir), read_only=True).all_steps() == [2]
  state, data_state = saved_state(workdir, 2)
  assert data_state == {"next_step": 2} and int(state["step"]) == 2


def _truncate_array_files(step_dir):
  """Halves every array-data file (orbax's OCDBT keeps arrays in `.../d/<hash>` files)."""
  for root, _, names in os.walk(step_dir / "state"):
    for name in names if os.path.basename(root) == "d" else ():
      path = os.path.join(root, name)
      with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _garble_metadata(step_dir):
  for root, _, names in os.walk(step_dir):
    for name in names:
      if "metadata" in name.lower():
        with open(os.path.join(root, name), "w") as f:
          f.write("{not json")


@pytest.mark.parametrize("corrupt", [_truncate_array_files, _garble_metadata],
                         ids=["truncated", "garbled_metadata"])
def test_corrupt_newest_checkpoint_falls_back_and_sets_it_aside(
    train_dir, straight_run, tmp_path, caplog, corrupt):
  workdir = tmp_path / "run"
  shutil.copytree(straight_run, workdir)
  corrupt(workdir / "checkpoints" / "6")
  config = utils.tiny_config(train_dir)
  config.checkpoint_every_steps = 2
  config.num_train_steps = 8
  with caplog.at_level("WARNING"):
    train.train_and_evaluate(config, str(workdir))
  messages = "\n".join(r.getMessage() for r in caplog.records)
  assert "Checkpoint at step 6" in messages and "cannot be restored" in messages
  assert "Resuming from step 4, the newest checkpoint that restores" in messages
  aside = os.listdir(workdir / "checkpoints_unreadable")
  assert len(aside) == 1 and aside[0].startswith("6.")
  # Re-trained from 4: steps 6 and 8 are saved again, equal to an uninterrupted 8-step run.
  manager = checkpointing.create_manager(str(workdir), read_only=True)
  assert {6, 8} <= set(manager.all_steps())
  straight8 = str(tmp_path / "straight8")
  train.train_and_evaluate(config, straight8)
  assert_trees_equal(saved_state(straight8, 8), saved_state(workdir, 8))


def _nan_in_term(monkeypatch, term, value):
  """Makes the loss term `term` equal `value` inside the jitted step (generator terms are summed
  by `steps._total`; the discriminator's come from `losses.discriminator_adversarial_loss`)."""
  if term in ("loss_d_real", "loss_d_fake"):
    original = losses.discriminator_adversarial_loss

    def d_loss(*args, **kwargs):
      real, fake = original(*args, **kwargs)
      return (real * value, fake) if term == "loss_d_real" else (real, fake * value)
    monkeypatch.setattr(steps.losses, "discriminator_adversarial_loss", d_loss)
  else:
    original_total = steps._total  # pylint: disable=protected-access

    def total(terms):
      assert term in terms, sorted(terms)
      terms[term] = terms[term] * value
      return original_total(terms)
    monkeypatch.setattr(steps, "_total", total)


@pytest.mark.parametrize("gan,term,value", [
    (False, "loss_pixel", np.nan), (True, "loss_pixel", np.inf), (True, "loss_gan", np.nan),
    (True, "loss_d_real", np.nan), (True, "loss_d_fake", np.inf)])
def test_non_finite_loss_term_stops_naming_it_and_keeps_last_checkpoint(
    train_dir, tmp_path, monkeypatch, gan, term, value):
  config = utils.tiny_gan_config(train_dir) if gan else utils.tiny_config(train_dir)
  config.checkpoint_every_steps = config.log_every_steps = 2
  config.num_train_steps = 2
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  good, _ = saved_state(workdir, 2)

  _nan_in_term(monkeypatch, term, np.float32(value))
  config.num_train_steps = 6
  with pytest.raises(train.NonFiniteError) as error:
    train.train_and_evaluate(config, workdir)
  message = str(error.value)
  assert f"{term}={value}" in message and "at step 3" in message, message
  assert checkpointing.create_manager(workdir, read_only=True).all_steps() == [2]
  assert_trees_equal(good, saved_state(workdir, 2)[0])
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(good["params"]))
