"""Writes the committed subsets of the BasicSR golden vectors (run once, by hand).

    python tests/data/subset_golden.py /path/to/shared/reference

The full files (~8 MB) are not shipped. Kept here (each file < 1 MB):
- imresize_golden.npz: every case and scale except `woman_full` (its input alone is 250 kB
  compressed); large upscaled outputs (`bird_*`, `butterfly_*` `up_x*`) are stored only at
  the rows/columns in `<case>/up_x<s>_rows` / `_cols` (first and last 8, every 5th in
  between: all borders and every kernel phase), i.e. `full[np.ix_(rows, cols)]`.
- metrics_golden.npz: one scale per Set5 image (crop borders 2, 3, 4) plus `baby_noise8`.
"""

import pathlib
import sys

import numpy as np

DATA_DIR = pathlib.Path(__file__).parent
IMRESIZE_DROP = ("woman_full",)
IMRESIZE_SUBSAMPLE = ("bird_crop_96x96", "butterfly_crop_65x77")
METRICS_KEEP = ("bird_bicubic_x2", "butterfly_bicubic_x3", "head_bicubic_x4", "baby_noise8")


def _sample_positions(size, edge=8, stride=5):
  """Sorted positions: the first and last `edge` and every `stride`-th in between."""
  return np.unique(np.concatenate(
      [np.arange(edge), np.arange(edge, size - edge, stride), np.arange(size - edge, size)]))


def _imresize_subset(golden):
  out = {}
  for key in golden.files:
    case, field = key.split("/")
    if case in IMRESIZE_DROP:
      continue
    value = golden[key]
    if case in IMRESIZE_SUBSAMPLE and field.startswith("up_"):
      rows, cols = _sample_positions(value.shape[0]), _sample_positions(value.shape[1])
      out[f"{key}_rows"], out[f"{key}_cols"] = rows, cols
      value = value[np.ix_(rows, cols)]
    out[key] = value
  return out


def main(reference_dir):
  reference_dir = pathlib.Path(reference_dir)
  golden = np.load(reference_dir / "imresize_golden.npz")
  np.savez_compressed(DATA_DIR / "imresize_golden.npz", **_imresize_subset(golden))
  golden = np.load(reference_dir / "metrics_golden.npz")
  np.savez_compressed(DATA_DIR / "metrics_golden.npz",
                      **{k: golden[k] for k in golden.files if k.split("/")[0] in METRICS_KEEP})


if __name__ == "__main__":
  main(sys.argv[1])
