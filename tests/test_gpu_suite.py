"""bench/gpu_suite.py's smoke mode (issue #19): one command runs jaxsr's rows of every kind
(train step, inference, degradations, real-world step) on tiny shapes without TensorFlow,
records a row past its limit as a timeout without losing the others, skips the peer's rows by
name when its Python cannot run them, and writes the JSON lines and the markdown table."""

import json
import os
import subprocess
import sys

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


def test_rows_cannot_import_tensorflow(tmp_path):
  sys.path.insert(0, os.path.join(REPO, "bench"))
  try:
    import gpu_suite  # pylint: disable=import-outside-toplevel
  finally:
    sys.path.pop(0)
  folder = gpu_suite.no_tensorflow_path(str(tmp_path))
  done = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True,
                        text=True, env=dict(os.environ, PYTHONPATH=folder), check=False)
  assert done.returncode == 1 and "must not import TensorFlow" in done.stderr
