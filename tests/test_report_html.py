"""`report.html` of `--mode=eval`: per image, crops bicubic | model | HR with the metrics of the
JSON, images referenced relatively; a crop that cannot be written does not stop the evaluation;
other runs' eval dirs as more columns."""

import html.parser
import json
import os
from urllib import parse

import numpy as np
from PIL import Image

from jaxsr import config_base
from jaxsr import evaluate
from jaxsr import image_io
from jaxsr import report_html

from tests import utils


class _Page(html.parser.HTMLParser):
  """Every <img src> and, per <tr data-image>, its cells [(data-kind, [img src], caption)]."""

  def __init__(self):
    super().__init__()
    self.srcs, self.rows = [], {}
    self._row = self._cell = None
    self._in_caption = False

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag == "tr" and "data-image" in attrs:
      self._row = self.rows.setdefault(attrs["data-image"], [])
    elif tag == "td" and self._row is not None:
      self._cell = (attrs["data-kind"], [], [])
      self._row.append(self._cell)
    elif tag == "img":
      self.srcs.append(attrs["src"])
      if self._cell is not None:
        self._cell[1].append(attrs["src"])
    elif tag == "figcaption":
      self._in_caption = True

  def handle_endtag(self, tag):
    if tag == "figcaption":
      self._in_caption = False
    elif tag == "td":
      self._cell = None
    elif tag == "tr":
      self._row = None

  def handle_data(self, data):
    if self._in_caption and self._cell is not None:
      self._cell[2].append(data)


def parse_page(path) -> _Page:
  page = _Page()
  page.feed(open(path, encoding="utf-8").read())
  return page


def make_folder(path, sizes) -> str:
  """PNGs img00, img01, ... of `sizes` (H, W); an image of 170 x 100 or more is flat but for a
  noisy patch at rows 110:170, columns 40:100 (the detail the report's crop must show)."""
  os.makedirs(path, exist_ok=True)
  rng = np.random.default_rng(0)
  for i, (h, w) in enumerate(sizes):
    image = utils.smooth_image(rng, h, w)
    if h >= 170 and w >= 100:
      image[:] = 128
      image[110:170, 40:100] = rng.integers(0, 256, (60, 60, 3))
    Image.fromarray(image).save(os.path.join(path, f"img{i:02d}.png"))
  return str(path)


def eval_config(folder: str):
  config = config_base.base_config()
  config.model.name, config.scale = "bicubic", 2
  config.eval.datasets = "folder:" + folder
  config.eval.bicubic_baseline = True
  config.eval.noref = False
  return config


def test_eval_writes_an_html_report_of_crops_with_the_json_metrics(tmp_path):
  # img00 is larger than the crop, img01 smaller: cropped to what it has.
  folder = make_folder(tmp_path / "Set5" / "HR", [(200, 180), (36, 42)])
  evaluate.evaluate(eval_config(folder), str(tmp_path / "run"))
  eval_dir = tmp_path / "run" / "eval"
  summary = json.loads((eval_dir / "Set5_x2.json").read_text())
  page = parse_page(eval_dir / "report.html")
  assert page.srcs
  for src in page.srcs:
    assert not parse.urlsplit(src).scheme and not src.startswith("/"), src
    assert (eval_dir / parse.unquote(src)).is_file(), src
  assert list(page.rows) == ["img00", "img01"]
  for image in summary["images"]:
    cells = {kind: (srcs, "".join(caption)) for kind, srcs, caption in page.rows[image["name"]]}
    assert [kind for kind, _, _ in page.rows[image["name"]]] == ["bicubic", "model", "hr"]
    assert all(len(srcs) == 1 for srcs, _ in cells.values())
    # The numbers under the crops are the JSON's, per image.
    assert cells["model"][1] == f"{image['psnr_y']:.2f} / {image['ssim_y']:.4f}"
    bicubic = image["bicubic"]
    assert cells["bicubic"][1] == f"{bicubic['psnr_y']:.2f} / {bicubic['ssim_y']:.4f}"
    top, left, height, width = image["report_crop"]
    window = np.s_[top:top + height, left:left + width]
    hr = np.asarray(Image.open(f"{folder}/{image['name']}.png"))
    crops = {kind: np.asarray(Image.open(eval_dir / parse.unquote(srcs[0])))
             for kind, (srcs, _) in cells.items()}
    np.testing.assert_array_equal(crops["hr"], hr[window])  # Sizes are even: no mod-crop.
    sr = np.asarray(Image.open(eval_dir / "Set5_x2" / f"{image['name']}.png"))
    np.testing.assert_array_equal(crops["model"], sr[window])
    assert crops["bicubic"].shape == crops["hr"].shape
  crops = {image["name"]: image["report_crop"] for image in summary["images"]}
  assert crops["img01"] == [0, 0, 36, 42]
  top, left, height, width = crops["img00"]
  assert (height, width) == (128, 128) and top % 2 == left % 2 == 0
  assert top <= 110 and top + height >= 170 and left <= 40 and left + width >= 100
  # The summary table of report.md on top.
  text = (eval_dir / "report.html").read_text()
  assert f"<td>Set5</td><td>x2</td><td>{summary['bicubic']['psnr_y']:.2f} / " in text


def test_failed_crops_do_not_stop_eval_and_other_runs_add_columns(tmp_path, monkeypatch):
  folder = make_folder(tmp_path / "Set5" / "HR", [(40, 44), (36, 42)])
  config = eval_config(folder)
  config.eval.save_images = False
  evaluate.evaluate(config, str(tmp_path / "a"))
  save_pil = image_io.save_pil

  def failing_save_pil(path, *args, **kwargs):
    if "report_images" in str(path) and str(path).endswith("img01.png"):
      raise OSError("disk full")
    save_pil(path, *args, **kwargs)

  monkeypatch.setattr(image_io, "save_pil", failing_save_pil)
  results = evaluate.evaluate(config, str(tmp_path / "b" / "run"))
  assert [image["report_crop"] is None for image in results["Set5"]["images"]] == [False, True]
  page_b = parse_page(tmp_path / "b" / "run" / "eval" / "report.html")
  assert [len(srcs) for _, srcs, _ in page_b.rows["img00"]] == [1, 1, 1]
  assert [len(srcs) for _, srcs, _ in page_b.rows["img01"]] == [0, 0, 0]  # '–' instead.

  eval_a, eval_b = tmp_path / "a" / "eval", tmp_path / "b" / "run" / "eval"
  report_html.write_html_report(str(eval_a), others=[("run <b>", str(eval_b))])
  page = parse_page(eval_a / "report.html")
  for src in page.srcs:
    assert not parse.urlsplit(src).scheme and not src.startswith("/"), src
    assert (eval_a / parse.unquote(src)).is_file(), src
  kinds = lambda row: [kind for kind, _, _ in row]
  assert kinds(page.rows["img00"]) == kinds(page.rows["img01"]) == [
      "bicubic", "model", "model", "hr"]
  # The second model column shows run b's crop, referenced relatively from a's eval dir.
  assert page.rows["img00"][2][1] == ["../../b/run/eval/report_images/Set5_x2/sr/img00.png"]
  assert page.rows["img01"][2][1] == []  # Not written in run b.
  b_images = {image["name"]: image for image in results["Set5"]["images"]}
  for name, row in page.rows.items():
    image = b_images[name]
    assert "".join(row[2][2]) == f"{image['psnr_y']:.2f} / {image['ssim_y']:.4f}"
  assert "<th>run &lt;b&gt;</th>" in (eval_a / "report.html").read_text()
