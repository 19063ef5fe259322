"""The command line: `python -m jaxsr.main` flags, overrides and error paths."""

import json
import os
import sys

from tests import utils


def run_main(*args):
  return utils.run_process([sys.executable, "-m", "jaxsr.main", *args],
                           env=dict(os.environ, JAX_PLATFORMS="cpu"))


def test_bicubic_eval_from_the_command_line_with_scale_override(tmp_path):
  val = utils.make_image_folder(tmp_path / "Tiny" / "HR", count=2, size=(31, 37))
  result = run_main("--mode=eval", "--config=configs/bicubic.py", f"--workdir={tmp_path / 'w'}",
                    f"--config.eval.datasets=folder:{val}", "--config.scale=3")
  assert result.returncode == 0, result.stderr[-3000:]
  with open(tmp_path / "w" / "eval" / "Tiny_x3.json") as f:
    report = json.load(f)
  assert report["scale"] == 3 and report["model"] == "bicubic"
  assert report["checkpoint_step"] is None
  assert len(report["images"]) == 2 and 10 < report["psnr_y"] < 60
  assert sorted(os.listdir(tmp_path / "w" / "eval" / "Tiny_x3")) == ["img00.png", "img01.png"]


def test_unknown_override_fails_before_anything_runs(tmp_path):
  result = run_main("--config=configs/quickstart.py", f"--workdir={tmp_path / 'w'}",
                    "--config.data.gt_sise=64")
  assert result.returncode != 0
  assert "gt_sise" in result.stderr
  assert not os.path.exists(tmp_path / "w")


def test_eval_without_checkpoint_says_so(tmp_path):
  val = utils.make_image_folder(tmp_path / "val", count=1, size=(16, 16))
  result = run_main("--mode=eval", "--config=configs/quickstart.py", f"--workdir={tmp_path}",
                    f"--config.eval.datasets=folder:{val}")
  assert result.returncode != 0
  assert "No checkpoint in" in result.stderr
