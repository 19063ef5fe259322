"""bench/gpu_suite.py's smoke mode (issue #19): one command runs jaxsr's rows of every kind
(train step, inference, degradations, real-world step) on tiny shapes without TensorFlow,
records a row past its limit as a timeout without losing the others, skips the peer's rows by
name when its Python cannot run them, and writes the JSON lines and the markdown table; the
Real-ESRGAN GAN step's peer row (RealESRGANModel) is listed and tabled, and runs on the CPU
when a torch Python with realesrgan is at hand."""

import argparse
import json
import os
import subprocess
import sys

import pytest

from tests import utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITE = os.path.join(REPO, "bench", "gpu_suite.py")
NO_TORCH = "/nonexistent/python"  # a peer Python that cannot run: its rows are skipped
JAXSR_ROWS = ["train/msrresnet/f32/jaxsr", "infer/srvgg/float32", "degrade/jaxsr",
              "realworld/realesrnet/jaxsr"]


def _suite(tmp_path, *args):
  done = utils.run_process([sys.executable, SUITE, "--smoke", f"--out={tmp_path}",
                            f"--torch_python={NO_TORCH}", *args], timeout=utils.LONG)
  assert done.returncode == 0, done.stderr[-3000:]
  rows = {}
  with open(tmp_path / "rows.jsonl") as f:
    for line in f:
      row = json.loads(line)
      rows[row["id"]] = row
  return rows, (tmp_path / "table.md").read_text()


def test_smoke_suite_runs_every_kind_of_jaxsr_row_and_tables_them(tmp_path):
  rows, table = _suite(tmp_path, "--only=" + ",".join(JAXSR_ROWS + ["train/msrresnet/float32"]))
  assert set(rows) == set(JAXSR_ROWS) | {"train/msrresnet/float32/torch"}
  for row_id in JAXSR_ROWS:
    assert rows[row_id]["status"] == "ok", rows[row_id]
  train = rows["train/msrresnet/f32/jaxsr"]["results"][0]
  assert train["jaxsr_median_s"] > 0 and train["jaxsr_compile_s"] > 0
  assert train["jaxsr_gflop_per_step"] > 0 and train["tiny"]  # analytic FLOPs, tiny network
  infer = rows["infer/srvgg/float32"]
  assert infer["results"][0]["jaxsr_median_s"] > 0
  assert "torch side skipped" in infer["note"] and NO_TORCH in infer["note"]
  skipped = rows["train/msrresnet/float32/torch"]["status"]
  assert skipped.startswith("skipped") and NO_TORCH in skipped
  assert rows["realworld/realesrnet/jaxsr"]["results"][0]["pairs_share"] > 0
  lines = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()
           if line.startswith("| ")}
  seconds = rows["train/msrresnet/f32/jaxsr"]["results"][0]["jaxsr_median_s"]
  assert f" {1000 * seconds:.1f} " in lines["train msrresnet f32"]
  assert "train/msrresnet/float32/torch" in table  # listed among the rows not ok


def test_a_row_past_its_limit_is_a_timeout_and_the_suite_goes_on(tmp_path):
  rows, table = _suite(tmp_path, "--only=train/msrresnet/f32/jaxsr,degrade/jaxsr",
                       "--row_limit_s=1")
  for row in rows.values():
    assert row["status"] == "timeout (1 s)", row
    assert row["wall_s"] < 60 and "log_tail" in row
  assert "degrade/jaxsr`: timeout" in table


def _gpu_suite():
  sys.path.insert(0, os.path.join(REPO, "bench"))
  try:
    import gpu_suite  # pylint: disable=import-outside-toplevel
  finally:
    sys.path.pop(0)
  return gpu_suite


def _peer_python() -> str:
  """A torch Python that runs the Real-ESRGAN peer (torch, basicsr, realesrgan), or ''."""
  python = os.environ.get("JAXSR_TORCH_PYTHON", "/tmp/benchvenv/bin/python")
  if not os.path.exists(python) or _gpu_suite().torch_problem(python):
    return ""
  check = ("import sys, torchvision.transforms.functional as f; "  # as the torch rows alias it
           "sys.modules.setdefault('torchvision.transforms.functional_tensor', f); "
           "import realesrgan.version")
  done = subprocess.run([python, "-c", check], capture_output=True, check=False, timeout=300)
  return python if done.returncode == 0 else ""


def test_realesrgan_peer_row_is_in_the_suite_and_its_table():
  gpu_suite = _gpu_suite()
  for smoke, shape in ((False, ["--batch=12", "--lr_size=64"]),
                       (True, ["--batch=1", "--lr_size=8", "--tiny"])):
    a = argparse.Namespace(smoke=smoke, warmup=3, steps=20, torch_python="/peer/python")
    rows = {r.id: r for r in gpu_suite.build_rows(a)}
    row = rows["realworld/realesrgan_b12/torch"]
    assert row.script == "compare_basicsr.py" and row.needs_torch and row.limit_s == 300
    assert row.args[:len(shape) + 1] == ["--rows=realesrgan", *shape]
    assert {"--torch_only", "--torch_mode=bf16_autocast", "--torch_python=/peer/python",
            f"--torch_device={'cpu' if smoke else 'cuda'}"} <= set(row.args)
  ok = lambda **r: {"status": "ok", "results": [r]}
  done = {"degrade/torch": ok(median_s=0.1), "realworld/realesrgan_b12/torch":
          ok(torch_median_s=0.5), "realworld/realesrgan/jaxsr": ok(total_s=0.3, compile_s=9)}
  line, = [x for x in gpu_suite.comparisons(done) if x[0].startswith("Real-ESRGAN step")]
  assert line[1] == 0.3 and line[3] == 0.1 + 0.5 and line[4] == gpu_suite.GOAL_PEER
  assert "RealESRGANModel" in line[2] and line[5] == 9


def test_realesrgan_peer_row_smoke(tmp_path):
  """RealESRGANModel.optimize_parameters (tiny RRDBNet + U-Net D, VGG19 with random weights,
  torch on the CPU) as the suite runs it; skipped without a torch Python with realesrgan
  ($JAXSR_TORCH_PYTHON, default /tmp/benchvenv/bin/python)."""
  python = _peer_python()
  if not python:
    pytest.skip("no torch Python with basicsr and realesrgan ($JAXSR_TORCH_PYTHON)")
  done = utils.run_process([sys.executable, SUITE, "--smoke", f"--out={tmp_path}",
                            f"--torch_python={python}", "--only=realworld/realesrgan_b12/"],
                           timeout=utils.LONG)
  assert done.returncode == 0, done.stderr[-3000:]
  row, = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
  assert row["status"] == "ok", row
  result = row["results"][0]
  assert result["torch_median_s"] > 0 and result["torch_ema"] and result["tiny"]
  assert result["torch_step"].endswith("RealESRGANModel.optimize_parameters")
  assert result["network_d"]["type"] == "UNetDiscriminatorSN"
  assert result["losses"].startswith("l1*1 + vgg19[") and result["losses"].endswith(
      "vanilla*0.1")
  assert result["torch_params_d"] > 0 and "realesrgan" in result["torch_versions"]


def test_rows_cannot_import_tensorflow(tmp_path):
  gpu_suite = _gpu_suite()
  folder = gpu_suite.no_tensorflow_path(str(tmp_path))
  done = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True,
                        text=True, env=dict(os.environ, PYTHONPATH=folder), check=False)
  assert done.returncode == 1 and "must not import TensorFlow" in done.stderr
