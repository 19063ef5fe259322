"""`<workdir>/eval/report.md`: the evaluation JSONs of a workdir as the tables papers print.

Read and written through `etils.epath`: the eval directory may be local or `gs://...`.

Table 1: one row per dataset and scale, Y-PSNR / Y-SSIM of the model and, where measured, of
bicubic (`eval.bicubic_baseline`, measured as the published tables are).
Table 2 (when measured): LPIPS and the no-reference measures of `jaxsr.noref` for HR, bicubic
(from the same LR as the model) and the model, one row each per dataset and scale.
`jaxsr.report_html` shows the same tables and per-image crops in `report.html`.
"""

import json
from typing import List, Optional, Tuple

from etils import epath

from jaxsr import noref

_REQUIRED = {"dataset", "scale", "psnr_y", "ssim_y"}
# Row order of papers' tables; other datasets follow alphabetically.
_PAPER_ORDER = ("set5", "set14", "b100", "bsd100", "urban100", "manga109", "div2k_valid")
# Table 2 columns: summary key -> header.
_MEASURE_HEADERS = {"lpips": "LPIPS", "rms_contrast": "RMS contrast", "sharpness": "sharpness",
                    "edge_width": "edge width (px)", "aliasing": "aliasing (°)"}


def load_summaries(eval_dir: str) -> List[dict]:
  """Every `<dataset>_x<scale>.json` summary in `eval_dir`, by dataset (papers' order: Set5,
  Set14, B100, Urban100, Manga109, then others alphabetically), then scale."""
  summaries = []
  for file in sorted(epath.Path(eval_dir).iterdir(), key=lambda path: path.name):
    if file.name.endswith(".json"):
      summary = json.loads(file.read_text())
      if isinstance(summary, dict) and _REQUIRED <= set(summary):
        summaries.append(summary)
  def order(summary):
    name = summary["dataset"].lower()
    rank = _PAPER_ORDER.index(name) if name in _PAPER_ORDER else len(_PAPER_ORDER)
    return rank, name, summary["scale"]

  return sorted(summaries, key=order)


def _row(cells) -> str:
  return "| " + " | ".join(cells) + " |"


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
  return [_row(header), "|" + "---|" * len(header)] + [_row(r) for r in rows]


def psnr_ssim(values: Optional[dict]) -> str:
  """'PSNR / SSIM' of `values` ({psnr_y, ssim_y}), 2 and 4 decimals; '–' if not measured."""
  if not values or "psnr_y" not in values:
    return "–"
  text = lambda value, spec: "–" if value is None else format(value, spec)  # None: inf / NaN.
  return f"{text(values['psnr_y'], '.2f')} / {text(values.get('ssim_y'), '.4f')}"


def _number(value) -> str:
  if value is None:
    return "–"
  return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"


def psnr_cells(summaries: List[dict]) -> Tuple[List[str], List[List[str]]]:
  """(header, rows): dataset | scale | [bicubic] | model, cells 'PSNR / SSIM'."""
  with_baseline = any("psnr_y" in s.get("bicubic", {}) for s in summaries)
  model = summaries[0].get("model", "model") if summaries else "model"
  header = ["dataset", "scale"] + (["bicubic"] if with_baseline else []) + [model]
  rows = [[s["dataset"], f"x{s['scale']}"] + ([psnr_ssim(s.get("bicubic"))]
                                              if with_baseline else []) + [psnr_ssim(s)]
          for s in summaries]
  return header, rows


def psnr_table(summaries: List[dict]) -> List[str]:
  """Markdown lines of `psnr_cells`."""
  return _table(*psnr_cells(summaries))


def measures_cells(summaries: List[dict]) -> Tuple[List[str], List[List[str]]]:
  """(header, rows): dataset | scale | image (HR, bicubic, model) | LPIPS and no-reference
  measures; ([], []) when no summary has any."""
  keys = [k for k in _MEASURE_HEADERS
          if any(k in s or k in s.get("hr", {}) for s in summaries)]
  if not keys:
    return [], []
  rows = []
  for s in summaries:
    for label, values in (("HR", s.get("hr", {})), ("bicubic", s.get("bicubic", {})),
                          (s.get("model", "model"), s)):
      if any(k in values for k in keys):
        rows.append([s["dataset"], f"x{s['scale']}", label]
                    + [_number(values.get(k)) for k in keys])
  return ["dataset", "scale", "image"] + [_MEASURE_HEADERS[k] for k in keys], rows


def measures_table(summaries: List[dict]) -> List[str]:
  """Markdown lines of `measures_cells`; [] when no summary has any measure."""
  header, rows = measures_cells(summaries)
  return _table(header, rows) if header else []


def psnr_caption(summaries: List[dict]) -> str:
  """What the cells of `psnr_cells` are."""
  with_baseline = any("psnr_y" in s.get("bicubic", {}) for s in summaries)
  return ("Y-PSNR (dB) / Y-SSIM, border = scale, LR by MATLAB bicubic (8-bit)"
          + ("; bicubic measured as the published tables (on Y)." if with_baseline else "."))


def measures_caption(summaries: List[dict]) -> List[str]:
  """What the columns of `measures_cells` are: a sentence, then one per no-reference measure."""
  with_lpips = any("lpips" in s for s in summaries)
  return (["Perceptual and no-reference measures (means over images, border = scale): "
           + ("LPIPS lower is better, " if with_lpips else "")
           + "no-reference measures closer to HR is better."]
          + [f"{_MEASURE_HEADERS[k]}: {description}"
             for k, (description, _) in noref.NOREF_KEYS.items()
             if any(k in s for s in summaries)])


def write_report(eval_dir: str) -> str:
  """Writes `<eval_dir>/report.md` from the summaries there (all scales evaluated so far) and
  returns the Markdown."""
  summaries = load_summaries(eval_dir)
  lines = [psnr_caption(summaries), ""] + psnr_table(summaries)
  measures = measures_table(summaries)
  if measures:
    caption = measures_caption(summaries)
    lines += ["", caption[0], ""] + measures + [""] + [f"- {line}" for line in caption[1:]]
  text = "\n".join(lines) + "\n"
  (epath.Path(eval_dir) / "report.md").write_text(text)
  return text
