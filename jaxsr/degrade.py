"""Shows what a real-world config trains on: `python -m jaxsr.degrade`.

  python -m jaxsr.degrade --config=configs/<realworld>.py --input=hr_dir --output=/tmp/degraded \
      --num=16 --seed=1 --config.degradation.sinc_prob=0.5

`--config` is a config built on `config_base.realworld_config()` (overrides as for
`jaxsr.main`); `--input` an image file or a folder (recursive: png, jpg, jpeg, bmp; files that
training would skip, unreadable or smaller than `data.gt_size`, are skipped with a warning).
Sample i takes image i % N (sorted), a P x P crop of it (P = `data.crop_pad_size`; smaller sides
reflect-101 padded, as training does) at an offset drawn from (seed, i), and its degradations
from `jax.random.fold_in(jax.random.key(seed), i)`. Written to `--output`: `hr_{i:03d}.png`
(the crop), `lr_{i:03d}.png` (8-bit, P / scale), `params.json` (per sample: image, crop offset,
every stage's draws) and `contact_sheet.png` (a row per sample: HR | LR nearest-upscaled to P).
A log line per sample summarises its draws.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402
from typing import Dict, List, Optional, Sequence, Tuple  # noqa: E402

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
from ml_collections import config_flags  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PIL import ImageDraw  # noqa: E402
from PIL import ImageFont  # noqa: E402
import tensorflow as tf  # noqa: E402

from jaxsr import cli  # noqa: E402
from jaxsr import config_base  # noqa: E402
from jaxsr import image_io  # noqa: E402
from jaxsr.data import input_pipeline  # noqa: E402
from jaxsr.data import realworld_input  # noqa: E402
from jaxsr.data import sources  # noqa: E402
from jaxsr.degradations import config as degradation_config  # noqa: E402
from jaxsr.degradations import pipeline  # noqa: E402
from jaxsr.degradations import resize  # noqa: E402

# pylint: disable=protected-access  # input_pipeline's example keys, sources' file check.

BATCH = 4  # Samples degraded at once (one compiled shape; the last batch is padded).
MAX_ROW = 256  # Contact-sheet rows are downscaled to this height when P is larger.
GAP = 4  # White pixels between the HR and LR columns and between rows.
# Names of the integer ids in the draws (kernel type SINC = len(KERNEL_TYPES) is "sinc").
ID_NAMES = {"kernel_type": degradation_config.KERNEL_TYPES + ("sinc",), "mode": resize.MODES,
            "direction": ("up", "down", "keep")}  # pipeline.UP, DOWN, KEEP.


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError unless `config` is a valid real-world config."""
  if not config_base.is_realworld(config):
    raise ValueError("--config has no `degradation`: use a real-world config, one built on "
                     "config_base.realworld_config() (LR made by the degradations).")
  config_base.validate(config)


def load_images(path: str, min_size: int) -> List[sources.ImageEntry]:
  """The usable images of a file or folder, sorted; others skipped with a warning.

  Raises:
    ValueError: `path` missing, or no usable image.
  """
  if os.path.isdir(path):
    return list(sources.load_source("folder:" + path, min_hr_size=min_size).hr)
  if not os.path.isfile(path):
    raise ValueError(f"--input={path} does not exist.")
  entries, _ = sources._check_single([(path, path, None)], min_size)
  if not entries:
    raise ValueError(f"--input={path} is not a usable image (see the warning above).")
  return entries


def crop_hr(image: np.ndarray, size: int, seed: int, index: int) -> Tuple[np.ndarray, List[int]]:
  """uint8 `[H, W, 3]` -> (uint8 `[size, size, 3]` crop of sample `index`, [top, left]).

  `realworld_input.crop_or_pad` with a key drawn from (seed, index); the offset is in the
  (bottom/right) padded image, i.e. in the image itself.
  """
  key = input_pipeline._example_keys(tf.constant(index, tf.int64), seed, 1)[0]
  offset = [int(o) for o in realworld_input.crop_offsets(tf.shape(image), size, key)]
  return realworld_input.crop_or_pad(tf.constant(image), size, key).numpy(), offset


def plain(name: str, value: np.ndarray):
  """A drawn value as JSON: ids -> names, bools, ints, floats rounded to 4 decimals."""
  base = name[len("sinc_"):] if name.startswith("sinc_") else name
  if base in ID_NAMES:
    return ID_NAMES[base][int(value)]
  if value.dtype == bool or name == "gray":
    return bool(value)
  if np.issubdtype(value.dtype, np.integer):
    return int(value)
  return round(float(value), 4)


def _kernel(p: Dict, prefix: str = "") -> str:
  kind, size = p[prefix + "kernel_type"], p[prefix + "kernel_size"]
  text = f"{kind} {size}x{size} "
  if kind == "sinc":
    return text + f"wc={p[prefix + 'omega_c']:.2f}"
  if kind.endswith("aniso"):
    text += (f"s=({p[prefix + 'sigma_x']:.2f},{p[prefix + 'sigma_y']:.2f}) "
             f"th={p[prefix + 'theta']:.2f}")
  else:
    text += f"s={p[prefix + 'sigma_x']:.2f}"
  return text + (f" b={p[prefix + 'beta']:.2f}" if kind.startswith(("generalized", "plateau"))
                 else "")


def describe(stage: str, p: Dict) -> str:
  """One stage's readable draws (`plain` values) in a few words."""
  kind = stage.rstrip("0123456789")
  if kind == "blur":
    return f"{stage} " + (_kernel(p) if p["applied"] else "off")
  if kind == "resize":
    return f"{stage} " + ("keep" if p["direction"] == "keep" else
                          f"{p['direction']} {p['factor']:.2f} {p['mode']}")
  if kind == "noise":
    draw = (f"gaussian {p['sigma']:.1f}" if p["gaussian"] else
            f"poisson {p['poisson_scale']:.2f}")
    return f"{stage} {draw} {'gray' if p['gray'] else 'color'}"
  if kind == "jpeg":
    return f"{stage} q={p['quality']:.0f}"
  if kind == "final":
    sinc = f" + {_kernel(p, 'sinc_')}" if p["sinc_kernel_size"] > 1 else ""
    steps = [f"resize {p['mode']}{sinc}", f"jpeg q={p['quality']:.0f}"]
    return f"{stage} " + " > ".join(steps[::-1] if p["jpeg_first"] else steps)
  return f"{stage} " + " ".join(f"{k}={v}" for k, v in p.items())


def contact_sheet(rows: Sequence[Tuple[np.ndarray, np.ndarray]],
                  max_height: int = MAX_ROW) -> np.ndarray:
  """[(HR uint8 `[P, P, 3]`, LR uint8 `[p, p, 3]`)] -> uint8 sheet, a row per pair: HR | LR
  nearest-upscaled to P, rows downscaled (area) to `max_height` if P is larger, labelled i."""
  font = ImageFont.load_default()
  images = []
  for i, (hr, lr) in enumerate(rows):
    factor = hr.shape[0] // lr.shape[0]
    lr_up = np.repeat(np.repeat(lr, factor, 0), factor, 1)
    gap = np.full((hr.shape[0], GAP, 3), 255, np.uint8)
    row = Image.fromarray(np.concatenate([hr, gap, lr_up], 1))
    if row.height > max_height:
      row = row.resize((round(row.width * max_height / row.height), max_height),
                       Image.Resampling.BOX)
    draw = ImageDraw.Draw(row)
    draw.rectangle(draw.textbbox((2, 2), str(i), font=font), fill=(0, 0, 0))
    draw.text((2, 2), str(i), fill=(255, 255, 255), font=font)
    images.append(np.asarray(row))
  width = max(im.shape[1] for im in images)
  sheet = np.full((sum(im.shape[0] + GAP for im in images) - GAP, width, 3), 255, np.uint8)
  top = 0
  for im in images:
    sheet[top:top + im.shape[0], :im.shape[1]] = im
    top += im.shape[0] + GAP
  return sheet


def degrade(config: ml_collections.ConfigDict, input_path: str, output: str, num: int = 8,
            seed: Optional[int] = None) -> List[Dict]:
  """Writes `num` degraded samples of `input_path` to `output` (see the module docstring).

  Returns:
    The `params.json` records.

  Raises:
    ValueError: not a valid real-world config, num < 1, missing input or no usable image.
  """
  check_config(config)
  if num < 1:
    raise ValueError(f"--num={num} must be >= 1")
  seed = config.seed if seed is None else seed
  size, scale = config.data.crop_pad_size, config.scale
  entries = load_images(input_path, config.data.gt_size)
  os.makedirs(output, exist_ok=True)
  degrader = pipeline.make_degrader(config.degradation, size, scale)
  sample_fn, apply_fn = jax.jit(degrader.sample), jax.jit(degrader.apply)
  root = jax.random.key(seed)
  records, rows = [], []
  for start in range(0, num, BATCH):
    ids = list(range(start, min(start + BATCH, num)))
    crops = [crop_hr(sources.read_images([entries[i % len(entries)]])[0], size, seed, i)
             for i in ids]
    hr = np.stack([c for c, _ in crops] + [crops[-1][0]] * (BATCH - len(ids)))
    keys = jax.vmap(lambda i: jax.random.fold_in(root, i))(
        jnp.asarray(ids + [ids[-1]] * (BATCH - len(ids))))
    params = sample_fn(keys)
    lr = image_io.quantize(np.asarray(apply_fn(params, hr.astype(np.float32) / 255.0)), 8)
    drawn = jax.device_get({s: {k: v for k, v in p.items() if k != "key"}
                            for s, p in params.items()})
    for b, i in enumerate(ids):
      stages = {stage.name: {k: plain(k, v[b]) for k, v in drawn[stage.name].items()}
                for stage in degrader.stages}
      (crop, offset), entry = crops[b], entries[i % len(entries)]
      records.append({"sample": i, "image": entry.path or entry.name, "crop_top_left": offset,
                      "stages": stages})
      Image.fromarray(crop).save(os.path.join(output, f"hr_{i:03d}.png"))
      Image.fromarray(lr[b]).save(os.path.join(output, f"lr_{i:03d}.png"))
      rows.append((crop, lr[b]))
      logging.info("sample %d: %s", i, "; ".join(describe(s, p) for s, p in stages.items()))
  with open(os.path.join(output, "params.json"), "w") as f:
    json.dump(records, f, indent=1)
  Image.fromarray(contact_sheet(rows)).save(os.path.join(output, "contact_sheet.png"))
  logging.info("Wrote %d samples (HR %dx%d, LR x1/%d), params.json and contact_sheet.png to %s",
               num, size, size, scale, output)
  return records


def _define_flags() -> None:
  """Flags of `python -m jaxsr.degrade` (defined only when run as a program)."""
  config_flags.DEFINE_config_file("config", None, "A real-world configs/<name>.py file.",
                                  lock_config=True)
  flags.DEFINE_string("input", None, "HR image file or folder (recursive).")
  flags.DEFINE_string("output", None, "Output folder.")
  flags.DEFINE_integer("num", 8, "Number of samples.", lower_bound=1)
  flags.DEFINE_integer("seed", None, "Seed of the crops and degradations (default: config.seed).")
  flags.mark_flags_as_required(["config", "input", "output"])


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  values = flags.FLAGS
  degrade(values.config, values.input, values.output, values.num, values.seed)


if __name__ == "__main__":
  _define_flags()
  cli.run(main)
