"""Evaluation: the bicubic model through the evaluation code reproduces BasicSR's golden
Y-PSNR/SSIM; grayscale files are measured on their channel; dataset names; sample grids."""

import numpy as np
import pytest
from PIL import Image

from jaxsr import builders
from jaxsr import config_base
from jaxsr import evaluate
from jaxsr import metrics
from jaxsr import samples
from jaxsr.data import input_pipeline

CASES = ("bird", "butterfly", "head")


def bicubic_sr_fn(scale):
  config = config_base.base_config()
  config.model.name, config.scale = "bicubic", scale
  return evaluate.make_sr_fn(builders.make_apply_fn(builders.model_from_config(config)))


@pytest.mark.numerics
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_model_matches_basicsr_golden_metrics(data_dir, scale):
  golden = np.load(data_dir / "metrics_golden.npz")
  pairs = []
  for case in CASES:
    key = f"{case}_bicubic_x{scale}"
    if f"{key}/hr" not in golden.files:
      continue
    # The golden SR is BasicSR's bicubic down then up without 8-bit rounding of the LR.
    lr, hr = input_pipeline.make_eval_pair(golden[f"{key}/hr"], scale, quantize=False)
    pairs.append((key, evaluate.EvalPair(case, lr, hr)))
  assert pairs, "no golden case for this scale"
  summary, _ = evaluate.evaluate_set(bicubic_sr_fn(scale), {}, [p for _, p in pairs], scale)
  # The SR is 8-bit: a value within float32 rounding of a tie may round the other way than in
  # BasicSR's float64 (tens of ~2.5e5), each moving Y-PSNR by ~1e-5 dB and SSIM by ~1e-7; a wrong
  # tap or an off-by-one pixel moves them by > 0.1 dB.
  for (key, _), result in zip(pairs, summary["images"]):
    assert result["psnr_y"] == pytest.approx(float(golden[f"{key}/psnr_y"]), abs=1e-3)
    assert result["ssim_y"] == pytest.approx(float(golden[f"{key}/ssim_y"]), abs=1e-4)


def test_grayscale_file_is_measured_on_its_channel(tmp_path):
  rng = np.random.default_rng(0)
  gray = (rng.random((24, 24)) * 255).astype(np.uint8)
  Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
  Image.fromarray(np.repeat(gray[..., None], 3, -1)).save(tmp_path / "rgb_of_gray.png")
  sets = evaluate.load_eval_sets(f"folder:{tmp_path}", scale=2)
  (name, pairs), = sets.items()
  assert [(p.name, p.grayscale) for p in pairs] == [("g", True), ("rgb_of_gray", False)]
  sr = np.clip(pairs[0].hr.astype(int) + rng.integers(-9, 10, pairs[0].hr.shape), 0,
               255).astype(np.uint8)
  on_gray = evaluate.image_metrics(sr, pairs[0].hr, 2, grayscale=True)
  on_y = evaluate.image_metrics(sr, pairs[0].hr, 2, grayscale=False)
  expected = metrics.psnr(metrics.to_gray_uint8(sr), pairs[0].hr[..., 0], crop_border=2)
  assert on_gray["psnr_y"] == pytest.approx(expected)
  # Y squeezes [0, 255] into [16, 235]: the same error reads 20*log10(255/219) dB better on Y.
  assert on_y["psnr_y"] - on_gray["psnr_y"] == pytest.approx(20 * np.log10(255 / 219), abs=0.1)


@pytest.mark.parametrize("spec,name", [
    ("folder:/data/Set5/HR", "Set5"), ("folder:/data/Set14/", "Set14"),
    ("folder:/data/urban", "urban"), ("tfds:div2k/bicubic_x4:validation", "div2k_bicubic_x4"),
])
def test_dataset_names(spec, name):
  assert evaluate.dataset_name(spec) == name


def test_sample_grid_layout():
  rng = np.random.default_rng(1)
  pairs, srs = [], []
  for size in (20, 28):
    hr = (rng.random((size, size + 4, 3)) * 255).astype(np.uint8)
    lr, hr = input_pipeline.make_eval_pair(hr, 2)
    pairs.append(evaluate.EvalPair("x", lr, hr))
    srs.append(hr)
  grid = evaluate.sample_grid(pairs, srs, scale=2)
  assert grid.shape == (2 * 20, 4 * 20, 3) and grid.dtype == np.uint8
  # The last column of the first row is the centre crop of its HR.
  np.testing.assert_array_equal(grid[:20, 60:], pairs[0].hr[0:20, 2:22])


def test_eval_report_rows_per_dataset_and_scale_with_bicubic_baseline(tmp_path):
  from tests import utils  # pylint: disable=g-import-not-at-top
  folder = utils.make_image_folder(tmp_path / "Set5" / "HR", count=2, size=(36, 36), seed=4)
  config = config_base.base_config()
  config.model.name = "bicubic"
  config.eval.datasets = "folder:" + folder
  config.eval.bicubic_baseline = True
  config.eval.save_images = False
  config.eval.noref = False
  workdir = str(tmp_path / "run")
  results = {}
  for scale in (2, 3):
    config.scale = scale
    results[scale] = evaluate.evaluate(config, workdir)["Set5"]
  report = (tmp_path / "run" / "eval" / "report.md").read_text()
  rows = [line for line in report.splitlines() if line.startswith("| Set5")]
  assert report.count("| dataset | scale | bicubic | bicubic |") == 1
  assert len(rows) == 2
  for row, scale in zip(rows, (2, 3)):
    summary = results[scale]
    # The model is bicubic itself (on RGB, 8-bit LR); the baseline runs bicubic on Y: close.
    assert summary["bicubic"]["psnr_y"] == pytest.approx(summary["psnr_y"], abs=0.3)
    assert summary["bicubic"]["psnr_y"] != summary["psnr_y"]
    cell = lambda s: f"{s['psnr_y']:.2f} / {s['ssim_y']:.4f}"
    assert row == f"| Set5 | x{scale} | {cell(summary['bicubic'])} | {cell(summary)} |"


# Published bicubic rows (RCAN table 3, as in ../shared/reference/PUBLISHED_PSNR.md): Set5.
_PUBLISHED_SET5_BICUBIC = {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_baseline_reproduces_published_set5_row(scale):
  images = input_pipeline.load_eval_images("folder:" + samples.VAL_DIR)
  assert len(images) == 5
  rows = [evaluate.published_bicubic_metrics(input_pipeline.make_eval_pair(im.hr, scale)[1],
                                             scale, im.grayscale) for im in images]
  psnr, ssim = _PUBLISHED_SET5_BICUBIC[scale]
  # Printed to 2 (PSNR) and 4 (SSIM) decimals.
  assert np.mean([r["psnr_y"] for r in rows]) == pytest.approx(psnr, abs=0.005)
  assert np.mean([r["ssim_y"] for r in rows]) == pytest.approx(ssim, abs=0.00005)


def test_eval_reports_noref_measures_of_model_bicubic_and_hr(tmp_path):
  from tests import utils  # pylint: disable=g-import-not-at-top
  folder = utils.make_image_folder(tmp_path / "Set5" / "HR", count=2, size=(48, 40), seed=5)
  config = config_base.base_config()
  config.model.name, config.scale = "bicubic", 2
  config.eval.datasets = "folder:" + folder
  config.eval.save_images = False
  summary = evaluate.evaluate(config, str(tmp_path / "run"))["Set5"]
  keys = ("rms_contrast", "sharpness", "edge_width", "aliasing")
  # The model is bicubic on the same LR: its measures are the bicubic ones, image by image.
  for image in summary["images"]:
    assert {k: image[k] for k in keys} == pytest.approx(image["bicubic"], rel=1e-3)
    assert set(image["hr"]) == set(keys)
  # Upscaling loses detail: HR is sharper than bicubic.
  assert summary["hr"]["sharpness"] > summary["sharpness"]
  assert summary["rms_contrast"] == pytest.approx(
      np.mean([i["rms_contrast"] for i in summary["images"]]))
  text = (tmp_path / "run" / "eval" / "report.md").read_text()
  rows = [line for line in text.splitlines() if line.startswith("| Set5 | x2 |")]
  assert [row.split(" | ")[2] for row in rows[1:]] == ["HR", "bicubic", "bicubic"]
  assert "edge width (px)" in text and "LPIPS" not in text


def test_report_rows_follow_the_papers_order(tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  from jaxsr import report  # pylint: disable=g-import-not-at-top
  for dataset, scale in [("mine", 2), ("Urban100", 4), ("set14", 2), ("Set5", 4), ("Set5", 2)]:
    summary = {"dataset": dataset, "scale": scale, "psnr_y": 30.0 + scale, "ssim_y": 0.9}
    (tmp_path / f"{dataset}_x{scale}.json").write_text(json.dumps(summary))
  (tmp_path / "notes.json").write_text("[1, 2]")  # Not a summary: ignored.
  text = report.write_report(str(tmp_path))
  rows = [line.split(" | ")[:2] for line in text.splitlines() if line.startswith("| ")][1:]
  assert rows == [["| Set5", "x2"], ["| Set5", "x4"], ["| set14", "x2"], ["| Urban100", "x4"],
                  ["| mine", "x2"]]
  assert (tmp_path / "report.md").read_text() == text
