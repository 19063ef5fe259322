"""`python -m jaxsr.degrade`: degraded samples, their parameters and the contact sheet."""

import importlib.util
import json
import os
import sys

import numpy as np
from PIL import Image
import pytest

from jaxsr import config_base
from jaxsr import degrade
from jaxsr.degradations import config as degradation_config
from jaxsr.degradations import resize

from tests import utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM, SEED, P, SCALE = 6, 3, 64, 4
STAGES = ["blur1", "resize1", "noise1", "jpeg1", "blur2", "resize2", "noise2", "final"]
# A real-world config file; the CLI run sets its small sizes by overrides (compile stays short).
CONFIG_FILE = ("from jaxsr import config_base\n\n\ndef get_config():\n"
               "  return config_base.realworld_config()\n")
OVERRIDES = {"data.crop_pad_size": P, "data.gt_size": 32, "scale": SCALE}


def small_config():
  """The config the CLI run ends up with (same compiled program: the persistent cache hits)."""
  config = config_base.realworld_config()
  for key, value in OVERRIDES.items():
    section, _, name = key.rpartition(".")
    (config[section] if section else config)[name] = value
  return config


def read(path):
  return np.asarray(Image.open(path))


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
  """One CLI run on 3 small images (padded), a 90x100 one (cropped) and a broken file."""
  tmp = tmp_path_factory.mktemp("degrade")
  folder = utils.make_image_folder(tmp / "in", count=3, size=(40, 48))
  os.makedirs(tmp / "in" / "sub")
  big = utils.smooth_image(np.random.default_rng(1), 90, 100)
  Image.fromarray(big).save(tmp / "in" / "sub" / "big.png")
  (tmp / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
  (tmp / "config.py").write_text(CONFIG_FILE)
  result = utils.run_process(
      [sys.executable, "-m", "jaxsr.degrade", f"--config={tmp / 'config.py'}",
       f"--input={folder}", f"--output={tmp / 'out'}", f"--num={NUM}", f"--seed={SEED}",
       *(f"--config.{k}={v}" for k, v in OVERRIDES.items())],
      env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO))
  assert result.returncode == 0, result.stderr[-3000:]
  return tmp, result.stderr


def test_writes_hr_lr_and_contact_sheet_of_the_right_sizes(cli_run):
  tmp, _ = cli_run
  out = tmp / "out"
  assert sorted(os.listdir(out)) == sorted(
      ["contact_sheet.png", "params.json"] + [f"{kind}_{i:03d}.png" for kind in ("hr", "lr")
                                              for i in range(NUM)])
  for i in range(NUM):
    assert read(out / f"hr_{i:03d}.png").shape == (P, P, 3)
    assert read(out / f"lr_{i:03d}.png").shape == (P // SCALE, P // SCALE, 3)
  sheet = read(out / "contact_sheet.png")  # Rows HR | gap | LR x SCALE, gaps between rows.
  assert sheet.shape == (NUM * P + (NUM - 1) * degrade.GAP, 2 * P + degrade.GAP, 3)
  lr_up = np.repeat(np.repeat(read(out / "lr_002.png"), SCALE, 0), SCALE, 1)
  row = 2 * (P + degrade.GAP)
  np.testing.assert_array_equal(sheet[row:row + P, P + degrade.GAP:], lr_up)


def test_params_json_has_every_stage_as_plain_values(cli_run):
  tmp, _ = cli_run
  records = json.loads((tmp / "out" / "params.json").read_text())
  images = [str(tmp / "in" / name) for name in ("img00.png", "img01.png", "img02.png",
                                                 os.path.join("sub", "big.png"))]
  assert [r["sample"] for r in records] == list(range(NUM))
  assert [r["image"] for r in records] == [images[i % 4] for i in range(NUM)]
  for record in records:
    assert list(record["stages"]) == STAGES
    for params in record["stages"].values():
      assert "key" not in params
      assert all(type(v) in (bool, int, float, str) for v in params.values()), params
    stages = record["stages"]
    assert stages["blur1"]["kernel_type"] in degradation_config.KERNEL_TYPES + ("sinc",)
    assert stages["resize1"]["direction"] in ("up", "down", "keep")
    assert stages["final"]["mode"] in resize.MODES
    assert 30 <= stages["jpeg1"]["quality"] <= 95


def test_hr_is_the_crop_at_the_recorded_offset(cli_run):
  tmp, _ = cli_run
  records = json.loads((tmp / "out" / "params.json").read_text())
  big = read(tmp / "in" / "sub" / "big.png")
  top, left = records[3]["crop_top_left"]
  assert 0 <= top <= 90 - P and 0 <= left <= 100 - P and (top, left) != (0, 0)
  np.testing.assert_array_equal(read(tmp / "out" / "hr_003.png"),
                                big[top:top + P, left:left + P])
  # A 40x48 image is reflect-padded at the bottom/right: the window starts at (0, 0).
  assert records[0]["crop_top_left"] == [0, 0]
  np.testing.assert_array_equal(read(tmp / "out" / "hr_000.png")[:40, :48],
                                read(tmp / "in" / "img00.png"))


def test_logs_a_summary_per_sample_and_skipped_files(cli_run):
  _, log = cli_run
  assert "broken.png" in log
  for i in range(NUM):
    line = next(line for line in log.splitlines() if f"sample {i}: " in line)
    assert all(stage in line for stage in STAGES), line


def test_same_seed_same_lr_other_seed_other_lr(cli_run):
  tmp, _ = cli_run
  config = small_config()
  degrade.degrade(config, str(tmp / "in"), str(tmp / "same"), num=2, seed=SEED)
  degrade.degrade(config, str(tmp / "in"), str(tmp / "other"), num=2, seed=SEED + 1)
  for i in range(2):
    name = f"lr_{i:03d}.png"
    # Exact: "the same --seed gives the same files" (README), on the same machine.
    np.testing.assert_array_equal(read(tmp / "same" / name), read(tmp / "out" / name))
    assert not np.array_equal(read(tmp / "other" / name), read(tmp / "out" / name))


def test_contact_sheet_rows_are_downscaled_when_the_crop_is_large():
  hr, lr = np.zeros((512, 512, 3), np.uint8), np.full((128, 128, 3), 200, np.uint8)
  sheet = degrade.contact_sheet([(hr, lr)] * 2)
  assert sheet.shape == (2 * degrade.MAX_ROW + degrade.GAP, 2 * degrade.MAX_ROW + 2, 3)


def test_non_realworld_config_is_a_clear_error(tmp_path):
  path = os.path.join(REPO, "configs", "quickstart.py")
  spec = importlib.util.spec_from_file_location("quickstart", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  with pytest.raises(ValueError, match=r"config_base\.realworld_config\(\)"):
    degrade.degrade(module.get_config(), str(tmp_path), str(tmp_path / "out"))


def test_missing_input_or_no_usable_image_is_a_clear_error(tmp_path):
  config = small_config()
  with pytest.raises(ValueError, match="does not exist"):
    degrade.degrade(config, str(tmp_path / "missing"), str(tmp_path / "out"))
  (tmp_path / "notes.png").write_text("not an image")
  with pytest.raises(ValueError, match="not a usable image"):
    degrade.degrade(config, str(tmp_path / "notes.png"), str(tmp_path / "out"))
  with pytest.raises(ValueError, match="No usable image"):
    degrade.degrade(config, str(tmp_path), str(tmp_path / "out"))
  config.data.crop_pad_size = 66  # Not a multiple of the scale: caught before compiling.
  with pytest.raises(ValueError, match="crop_pad_size=66"):
    degrade.degrade(config, str(tmp_path), str(tmp_path / "out"))
