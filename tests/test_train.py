"""End-to-end training on tiny images: checkpoints, exact resume (also after a kill), non-finite
stop, evaluation mode."""

import json
import os
import signal
import sys
import time

import jax
import numpy as np
import pytest
from PIL import Image

from jaxsr import checkpointing
from jaxsr import evaluate
from jaxsr import metrics
from jaxsr import preemption
from jaxsr import train

from tests import utils
from tests.utils import assert_trees_equal, saved_state

@pytest.fixture(scope="module")
def folders(tmp_path_factory):
  root = tmp_path_factory.mktemp("images")
  return (utils.make_image_folder(root / "train", count=6, size=(40, 48), seed=1),
          utils.make_image_folder(root / "val", count=2, size=(36, 44), seed=2))


def test_train_writes_checkpoints_logs_samples_and_learns(folders, tmp_path):
  train_dir, val_dir = folders
  config = utils.tiny_config(train_dir, val_dir)
  workdir = str(tmp_path / "run")
  state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == 6
  manager = checkpointing.create_manager(workdir, read_only=True)
  assert sorted(manager.all_steps()) == [3, 6]
  assert manager.metrics(3)["val_psnr_y"] > 0
  saved, data_state = saved_state(workdir)
  assert data_state["next_step"] == 6
  assert_trees_equal(saved["params"], jax.device_get(state.params))
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))
  samples = sorted(os.listdir(os.path.join(workdir, "samples")))
  assert samples == ["val_step0000003.png", "val_step0000006.png"]
  grid = np.asarray(Image.open(os.path.join(workdir, "samples", samples[0])))
  assert grid.shape[1] == 4 * grid.shape[0] // 2  # 2 rows of LR | bicubic | SR | HR squares.
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["model"]["num_feat"] == 4


def test_resume_continues_exactly(folders, tmp_path):
  train_dir, _ = folders
  config = utils.tiny_config(train_dir)
  config.num_train_steps = 6
  train.train_and_evaluate(config, str(tmp_path / "straight"))
  config.num_train_steps = 3
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  config.num_train_steps = 6
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  straight, data_a = saved_state(tmp_path / "straight", 6)
  resumed, data_b = saved_state(tmp_path / "resumed", 6)
  assert data_a == data_b
  assert_trees_equal(straight, resumed)


def _main_cmd(config_path, workdir, *overrides):
  return [sys.executable, "-m", "jaxsr.main", f"--config={config_path}", f"--workdir={workdir}",
          *overrides]


def test_killed_run_resumes_to_the_same_state(folders, tmp_path):
  """SIGKILL a training process after its first checkpoint, restart the same command, and compare
  with an uninterrupted run of the same length."""
  config_path = utils.tiny_config_file(tmp_path / "config.py", folders[0])
  env = utils.process_env()
  killed = tmp_path / "killed"
  common = ["--config.num_train_steps=100000", "--config.checkpoint_every_steps=4",
            "--config.log_every_steps=4"]
  with utils.LoggedProcess(_main_cmd(config_path, killed, *common), env=env) as proc:
    proc.wait_until((killed / "checkpoints" / "4").is_dir, "checkpoint of step 4")
    proc.proc.send_signal(signal.SIGKILL)
    proc.wait()
  last = checkpointing.create_manager(str(killed), read_only=True).latest_step()
  end = last + 6
  overrides = [f"--config.num_train_steps={end}", "--config.checkpoint_every_steps=4",
               "--config.log_every_steps=4"]
  for workdir in (killed, tmp_path / "straight"):
    utils.run_process(_main_cmd(config_path, workdir, *overrides), env=env, check=True)
  resumed, data_a = saved_state(killed, end)
  straight, data_b = saved_state(tmp_path / "straight", end)
  assert data_a == data_b == {"next_step": end}
  assert_trees_equal(straight, resumed)


def _signal_endless_run(train_dir, workdir, signum, at_step, log_every, again_after=None):
  """Starts a 100000-step `jaxsr.main` run (no periodic checkpoint), sends `signum` once it logs
  `at_step` (and again `again_after` seconds later) -> (exit status, log, latest saved step or
  None)."""
  config_path = utils.tiny_config_file(os.path.join(workdir.parent, "config.py"), train_dir)
  with utils.LoggedProcess(_main_cmd(config_path, workdir, "--config.num_train_steps=100000",
                                     "--config.checkpoint_every_steps=100000",
                                     f"--config.log_every_steps={log_every}")) as proc:
    proc.wait_for(f"step {at_step}/100000")
    proc.proc.send_signal(signum)
    if again_after is not None:
      time.sleep(again_after)  # Not a synchronisation: the second signal's moment is the point.
      proc.proc.send_signal(signum)
    code = proc.wait()
  return code, proc.log, checkpointing.create_manager(str(workdir), read_only=True).latest_step()


def test_sigterm_saves_the_current_state(folders, tmp_path):
  """Preemption (SIGTERM) mid-run saves the state reached, between checkpoint intervals, and
  exits 0 with a line saying how to resume."""
  workdir = tmp_path / "preempted"
  returncode, log, step = _signal_endless_run(folders[0], workdir, signal.SIGTERM, 6, 2)
  assert step is not None and step >= 6, log[-3000:]
  assert returncode == 0 and "Traceback" not in log, log[-3000:]
  assert f"Stopped at step {step} of 100000" in log and "Re-run the same command" in log
  saved, data_state = saved_state(workdir, step)
  assert data_state == {"next_step": step} and int(saved["step"]) == step
  # The marker launchers read (launch/tpu.sh), and its check's exit status; a resumed run
  # removes it.
  marker = json.loads((workdir / preemption.MARKER).read_text())
  assert marker["step"] == step and marker["num_train_steps"] == 100000
  check = utils.run_process([sys.executable, "-m", "jaxsr.preemption", f"--workdir={workdir}"])
  assert check.returncode == preemption.MARKER_EXIT
  assert f"stopped at step {step} of 100000 on a preemption notice" in check.stdout
  config_path = workdir.parent / "config.py"
  utils.run_process(_main_cmd(config_path, workdir, f"--config.num_train_steps={step + 1}"),
                    check=True)
  assert not (workdir / preemption.MARKER).exists()
  assert utils.run_module("jaxsr.preemption", f"--workdir={workdir}").stdout == ""


def test_progress_is_logged_once_per_log_step(folders, tmp_path):
  """One console line per log step (train.py's), none from clu's logging writer; TensorBoard
  still gets the scalars."""
  workdir = tmp_path / "run"
  config_path = utils.tiny_config_file(tmp_path / "config.py", folders[0])
  result = utils.run_process(_main_cmd(config_path, workdir), check=True)
  steps = [line for line in result.stderr.splitlines() if "loss" in line]
  assert [line.split("step ")[1].split(" ")[0] for line in steps] == ["2/6", "4/6", "6/6"], (
      utils.tail(result.stderr))
  assert not any("logging_writer" in line for line in result.stderr.splitlines())
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))


@pytest.mark.parametrize("train_spec", ["folder:{missing}", "folder:{empty}",
                                        "tfds:no_such_dataset"])
def test_missing_or_empty_training_source_fails_before_the_state_is_built(
    folders, tmp_path, monkeypatch, train_spec):
  def must_not_run(*args, **kwargs):
    raise AssertionError("the state was built / compiled before the training data was checked")
  monkeypatch.setattr(train.builders, "build_state", must_not_run)
  monkeypatch.setattr(train.builders, "jit_train_step", must_not_run)
  (tmp_path / "empty").mkdir()
  config = utils.tiny_config(folders[0])
  config.data.train = train_spec.format(missing=tmp_path / "missing", empty=tmp_path / "empty")
  config.data.data_dir = str(tmp_path / "tfds")
  with pytest.raises(ValueError) as error:
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert config.data.train.split(":", 1)[1].split("/")[-1] in str(error.value)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(folders, tmp_path):
  train_dir, _ = folders
  config = utils.tiny_config(train_dir)
  config.optim.schedule, config.optim.milestones, config.optim.gamma = "multistep", (3,), 1e38
  workdir = str(tmp_path / "nan")
  with pytest.raises(train.NonFiniteError, match=r"Non-finite (loss|loss_pixel|psnr|grad_norm)"):
    train.train_and_evaluate(config, workdir)
  manager = checkpointing.create_manager(workdir, read_only=True)
  assert manager.all_steps() == [3]
  saved, _ = saved_state(workdir, 3)
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(saved["params"]))


def test_eval_mode_writes_json_and_images(folders, tmp_path):
  train_dir, val_dir = folders
  config = utils.tiny_config(train_dir, val_dir)
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  config.eval.checkpoint = "latest"
  results = evaluate.evaluate(config, workdir)
  with open(os.path.join(workdir, "eval", "val_x2.json")) as f:
    report = json.load(f)
  assert report["checkpoint_step"] == 6
  assert [i["name"] for i in report["images"]] == ["img00", "img01"]
  assert report["psnr_y"] == pytest.approx(np.mean([i["psnr_y"] for i in report["images"]]))
  assert results["val"]["psnr_y"] == report["psnr_y"]
  # The saved SR image reproduces the reported per-image PSNR against the mod-cropped HR.
  hr = np.asarray(Image.open(os.path.join(val_dir, "img00.png")))[:36, :44]
  sr = np.asarray(Image.open(os.path.join(workdir, "eval", "val_x2", "img00.png")))
  assert sr.shape == hr.shape
  assert metrics.psnr(sr, hr, crop_border=2) == pytest.approx(report["images"][0]["psnr_y"])
  markdown = open(os.path.join(workdir, "eval", "report.md")).read()
  assert "| dataset | scale | msrresnet |" in markdown  # No bicubic column unless asked.
  assert f"| val | x2 | {report['psnr_y']:.2f} / {report['ssim_y']:.4f} |" in markdown


def test_eval_of_missing_checkpoint_step_is_an_error(folders, tmp_path):
  train_dir, val_dir = folders
  config = utils.tiny_config(train_dir, val_dir)
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  config.eval.checkpoint = "5"
  with pytest.raises(ValueError, match="No checkpoint at step 5"):
    evaluate.evaluate(config, workdir)


def test_init_from_loads_ema_params_and_rejects_another_architecture(folders, tmp_path):
  train_dir, _ = folders
  config = utils.tiny_config(train_dir)
  source = str(tmp_path / "source")
  trained = train.train_and_evaluate(config, source)
  config.init_from, config.num_train_steps = source, 1
  config.optim.learning_rate = 0.0  # The first step then keeps the initial params.
  started = train.train_and_evaluate(config, str(tmp_path / "child"))
  assert_trees_equal(jax.device_get(started.params), jax.device_get(trained.ema_params))
  assert int(started.step) == 1
  config.model.num_feat = 8
  with pytest.raises(ValueError, match="does not fit this model"):
    train.train_and_evaluate(config, str(tmp_path / "other"))


def test_ctrl_c_saves_the_state_reached_and_exits_130(folders, tmp_path):
  workdir = tmp_path / "interrupted"
  code, log, step = _signal_endless_run(folders[0], workdir, signal.SIGINT, 3, 1)
  assert code == 130 and "Traceback" not in log, log[-3000:]
  # One line, the last, saying which step was saved.
  assert log.strip().splitlines()[-1] == (
      f"error: interrupted (Ctrl-C); the checkpoint of step {step} is saved in "
      f"{workdir / 'checkpoints'}. Re-run the same command to resume."), log[-3000:]
  saved, data_state = saved_state(workdir, step)
  assert step >= 3 and data_state == {"next_step": step} and int(saved["step"]) == step
  assert not (workdir / preemption.MARKER).exists()  # Ctrl-C is no preemption.


@pytest.mark.parametrize("again_after", [0.0, 0.3])
def test_a_second_ctrl_c_still_ends_in_one_line_with_the_state_saved(folders, tmp_path,
                                                                     again_after):
  """Ctrl-C twice (at once, or while the first one's save is under way): still exit 130, no
  traceback, a whole checkpoint and one line naming it."""
  workdir = tmp_path / "interrupted"
  code, log, step = _signal_endless_run(folders[0], workdir, signal.SIGINT, 3, 1, again_after)
  assert code == 130 and "Traceback" not in log, log[-3000:]
  last = log.strip().splitlines()[-1]
  assert last.startswith("error: interrupted (") and last.endswith(
      f"the checkpoint of step {step} is saved in {workdir / 'checkpoints'}. Re-run the same "
      "command to resume."), log[-3000:]
  saved, data_state = saved_state(workdir, step)
  assert step >= 3 and data_state == {"next_step": step} and int(saved["step"]) == step
