"""`<workdir>/eval/report.html`: per image, crops of bicubic | model | HR with their metrics.

`--mode=eval` saves, for every image, three crops of the same HR window (`crop_window`: the
most detailed one) as PNGs under `<eval dir>/report_images/<dataset>_x<scale>/{bicubic,sr,hr}/`
(`save_crops`) and records the window in the image's JSON entry (`report_crop`);
`write_html_report` turns them and the JSONs into one static page (no script, no external
resource, images referenced relatively) beside `report.md`. Other runs' eval dirs can be added
as columns, to compare runs by eye. Read and written through `etils.epath` (local or `gs://`).
"""

import html
import os
from typing import Dict, List, Optional, Sequence, Tuple
from urllib import parse

from absl import logging
from etils import epath
import numpy as np
from PIL import Image

from jaxsr import image_io
from jaxsr import report

CROP_SIZE = 128  # HR pixels per side at most (rounded down to a multiple of the scale).
ZOOM = 2  # The page shows crops at this many screen pixels per pixel (pixelated).
IMAGES_DIR = "report_images"
KINDS = ("bicubic", "sr", "hr")  # Crop subfolders: RGB bicubic of the LR, model output, HR.


def crop_window(hr: np.ndarray, scale: int, size: int = CROP_SIZE) -> List[int]:
  """[top, left, height, width] of the HR window with the most detail: of side `size` rounded
  down to a multiple of `scale` (an image smaller than that: its whole height / width), on the
  LR grid, with the largest sum of |horizontal| + |vertical| differences of the gray image
  among positions a quarter side apart (and flush with the bottom / right; first on ties).

  Args:
    hr: uint8 `[H, W, 3]`, H and W multiples of `scale` (mod-cropped).
    scale: SR scale.
    size: the largest side.
  """
  h, w = hr.shape[:2]
  size = max(scale, size - size % scale)
  height, width = min(size, h), min(size, w)
  gray = hr.astype(np.float64).mean(axis=-1)
  detail = np.zeros((h + 1, w + 1))  # Zero first row / column: an integral image.
  detail[1:, 2:] += np.abs(np.diff(gray, axis=1))
  detail[2:, 1:] += np.abs(np.diff(gray, axis=0))
  integral = detail.cumsum(0).cumsum(1)
  stride = max(scale, size // 4 // scale * scale)
  positions = lambda n, m: np.unique(np.append(np.arange(0, n - m + 1, stride), n - m))
  tops, lefts = positions(h, height)[:, None], positions(w, width)[None, :]
  sums = (integral[tops + height, lefts + width] - integral[tops, lefts + width]
          - integral[tops + height, lefts] + integral[tops, lefts])
  i, j = np.unravel_index(np.argmax(sums), sums.shape)
  return [int(tops[i, 0]), int(lefts[0, j]), int(height), int(width)]


def crop_path(stem: str, kind: str, name: str) -> str:
  """Path of a crop PNG relative to the eval dir ('/'-separated); `stem`: `<dataset>_x<scale>`,
  `kind` of `KINDS`, `name` the image's."""
  return f"{IMAGES_DIR}/{stem}/{kind}/{name}.png"


def make_crop_dirs(eval_dir: epath.PathLike, stem: str) -> None:
  """Makes the folders of `crop_path(stem, kind, ...)` in `eval_dir`, for every kind."""
  for kind in KINDS:
    (epath.Path(eval_dir) / IMAGES_DIR / stem / kind).mkdir(parents=True, exist_ok=True)


def save_crops(eval_dir: epath.PathLike, stem: str, name: str, window: List[int],
               images: Dict[str, np.ndarray]) -> Optional[List[int]]:
  """Writes the `window` ([top, left, height, width]) of each uint8 `[H, W, 3]` image of
  `images` ({kind of `KINDS`: image}) to `<eval_dir>/<crop_path>` (folders made by
  `make_crop_dirs`). Returns `window`, or None (logged, not raised: the evaluation goes on) if
  one could not be written."""
  top, left, height, width = window
  try:
    for kind, image in images.items():
      image_io.save_pil(epath.Path(eval_dir) / crop_path(stem, kind, name),
                        Image.fromarray(np.ascontiguousarray(
                            image[top:top + height, left:left + width])))
  except Exception as error:  # pylint: disable=broad-except
    logging.warning("No report crops for %s: %s", name, error)
    return None
  return window


def _is_local(path: str) -> bool:
  return "://" not in path


def _src(eval_dir: str, run_dir: str, relative: str) -> str:
  """The `src` of `relative` (a path in `run_dir`) on the page in `eval_dir`: relative when
  both are local (or the same), else the run's URL."""
  if run_dir == eval_dir:
    target = relative
  elif _is_local(run_dir) and _is_local(eval_dir):
    target = os.path.relpath(os.path.join(run_dir, relative), eval_dir).replace(os.sep, "/")
  else:
    return run_dir.rstrip("/") + "/" + parse.quote(relative)
  return parse.quote(target)


def _cells(tag: str, texts: List[str]) -> str:
  return "".join(f"<{tag}>{html.escape(text)}</{tag}>" for text in texts)


def _table_html(header: List[str], rows: List[List[str]]) -> List[str]:
  """Lines of an HTML table of text cells (escaped)."""
  return (["<table class=\"summary\">", f"<thead><tr>{_cells('th', header)}</tr></thead>",
           "<tbody>"] + [f"<tr>{_cells('td', row)}</tr>" for row in rows]
          + ["</tbody>", "</table>"])


def _metrics_text(values: Optional[dict]) -> List[str]:
  """Caption lines: 'PSNR / SSIM' (as in report.md) and 'LPIPS x' when measured."""
  values = values or {}
  lines = [report.psnr_ssim(values)] if "psnr_y" in values else []
  if values.get("lpips") is not None:
    lines.append(f"LPIPS {values['lpips']:.4f}")
  return lines


def _figure(src: str, window: Optional[List[int]], alt: str, caption: List[str]) -> str:
  """A cell's content: the crop (`window` its [top, left, height, width]; None: not written,
  '–') over its caption lines."""
  if window is None:
    image = "<div class=\"none\">–</div>"
  else:
    image = (f"<img src=\"{html.escape(src)}\" alt=\"{html.escape(alt)}\" "
             f"width=\"{window[3] * ZOOM}\" height=\"{window[2] * ZOOM}\">")
  text = "<br>".join(html.escape(line) for line in caption) or "&nbsp;"
  return f"<figure>{image}<figcaption>{text}</figcaption></figure>"


def _images_by_name(summary: Optional[dict]) -> Dict[str, dict]:
  return {image["name"]: image for image in (summary or {}).get("images", [])}


def _dataset_section(summary: dict, runs: List[Tuple[str, str, Dict[str, dict]]],
                     eval_dir: str) -> List[str]:
  """Lines of one dataset's heading, caption and table: a row per image of `summary` (this
  run's), cells bicubic | each run's model | HR; `runs`: (label, eval dir, {stem: summary})."""
  stem = f"{summary['dataset']}_x{summary['scale']}"
  images = summary.get("images", [])
  with_baseline = any("psnr_y" in image.get("bicubic", {}) for image in images)
  lines = [f"<h2 id=\"{html.escape(stem)}\">{html.escape(summary['dataset'])} "
           f"x{summary['scale']}</h2>",
           f"<p>Crops of at most {CROP_SIZE} x {CROP_SIZE} HR pixels where HR has the most "
           f"detail, shown {ZOOM}x enlarged; under each, the metrics of the whole image "
           f"(as in {html.escape(stem)}.json): Y-PSNR (dB) / Y-SSIM, border = scale, and "
           "LPIPS when measured. Bicubic: MATLAB bicubic of the 8-bit RGB LR"
           + ("; its PSNR / SSIM measured as the published tables (on Y)" if with_baseline
              else "") + ".</p>"]
  header = ["image", "bicubic"] + [label for label, _, _ in runs] + ["HR"]
  lines += ["<table class=\"images\">", f"<thead><tr>{_cells('th', header)}</tr></thead>",
            "<tbody>"]
  run_images = [(run_dir, _images_by_name(summaries.get(stem))) for _, run_dir, summaries in runs]
  for image in images:
    name, window = image["name"], image.get("report_crop")
    src = lambda run_dir, kind, n=name: _src(eval_dir, run_dir, crop_path(stem, kind, n))
    cells = [("bicubic", _figure(src(eval_dir, "bicubic"), window, f"{name} bicubic",
                                 _metrics_text(image.get("bicubic"))))]
    for (label, _, _), (run_dir, images) in zip(runs, run_images):
      other = images.get(name, {})
      cells.append(("model", _figure(src(run_dir, "sr"), other.get("report_crop"),
                                     f"{name} {label}", _metrics_text(other))))
    cells.append(("hr", _figure(src(eval_dir, "hr"), window, f"{name} HR", ["reference"])))
    lines.append(f"<tr data-image=\"{html.escape(name)}\"><th>{html.escape(name)}</th>"
                 + "".join(f"<td data-kind=\"{kind}\">{cell}</td>" for kind, cell in cells)
                 + "</tr>")
  return lines + ["</tbody>", "</table>"]


_STYLE = """body { font-family: sans-serif; margin: 1em; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 4px; text-align: center; vertical-align: top; }
figure { margin: 0; }
figcaption { font-size: small; font-family: monospace; }
img { display: block; margin: auto; image-rendering: pixelated; }
.none { color: #888; }"""


def write_html_report(eval_dir: str, others: Sequence[Tuple[str, str]] = ()) -> str:
  """Writes `<eval_dir>/report.html` and returns it: report.md's summary tables, then per
  dataset and scale a table of crops bicubic | model | HR with each image's metrics.

  Args:
    eval_dir: an eval dir of `--mode=eval` (its `<dataset>_x<scale>.json` and `report_images`).
    others: (label, eval dir) of other runs: their model crops as more columns, for the images
      of `eval_dir`'s datasets and scales (referenced relatively when both dirs are local).
  """
  eval_dir = str(eval_dir)
  summaries = report.load_summaries(eval_dir)
  model = summaries[0].get("model", "model") if summaries else "model"
  by_stem = lambda run_summaries: {f"{s['dataset']}_x{s['scale']}": s for s in run_summaries}
  runs = [(model, eval_dir, by_stem(summaries))] + [
      (label, str(d), by_stem(report.load_summaries(str(d)))) for label, d in others]
  lines = ["<!DOCTYPE html>", "<html lang=\"en\">", "<head>", "<meta charset=\"utf-8\">",
           "<title>jaxsr evaluation</title>", f"<style>\n{_STYLE}\n</style>", "</head>",
           "<body>", "<h1>Evaluation</h1>"]
  for label, run_dir, run_summaries in runs:
    run_summaries = list(run_summaries.values())
    if others:
      lines.append(f"<h3>{html.escape(label)} ({html.escape(run_dir)})</h3>")
    lines += [f"<p>{html.escape(report.psnr_caption(run_summaries))}</p>"]
    lines += _table_html(*report.psnr_cells(run_summaries))
    header, rows = report.measures_cells(run_summaries)
    if header:
      caption = report.measures_caption(run_summaries)
      lines += [f"<p>{html.escape(caption[0])}</p>"]
      lines += _table_html(header, rows)
      lines += ["<ul>"] + [f"<li>{html.escape(line)}</li>" for line in caption[1:]] + ["</ul>"]
  for summary in summaries:
    lines += _dataset_section(summary, runs, eval_dir)
  text = "\n".join(lines + ["</body>", "</html>"]) + "\n"
  (epath.Path(eval_dir) / "report.html").write_text(text)
  return text

