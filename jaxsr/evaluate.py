"""Whole-image evaluation: Y-PSNR/SSIM as papers report them, sample grids, and `--mode=eval`.

HR images are mod-cropped to the scale and their LR made by MATLAB bicubic (rounded to 8 bits, as
benchmark LR PNGs are). SR output is clipped to [0, 1] and rounded to uint8 before the metrics, as
BasicSR does.

The bicubic baseline (`eval.bicubic_baseline`) follows the protocol behind the published bicubic
rows (SRCNN / VDSR MATLAB code, copied by later tables): bicubic runs on the 8-bit Y channel
itself, LR unrounded, output rounded; see `published_bicubic_metrics`.
"""

import json
import os
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from jaxsr import builders
from jaxsr import checkpointing
from jaxsr import config_base
from jaxsr import metrics as metrics_lib
from jaxsr import sharding
from jaxsr.data import input_pipeline
from jaxsr.ops import color
from jaxsr.ops import imresize


class EvalPair(NamedTuple):
  """One evaluation image: `lr` float32 [h, w, 3] in [0, 1], `hr` uint8 [h*s, w*s, 3];
  `grayscale` if the HR file is single-channel (then measured on gray, not on Y)."""
  name: str
  lr: np.ndarray
  hr: np.ndarray
  grayscale: bool = False


def dataset_name(spec: str) -> str:
  """A short name for a dataset spec: `folder:/d/Set5/HR` -> `Set5`, `tfds:set14` -> `set14`."""
  kind, _, rest = spec.partition(":")
  if kind != "folder":
    return (rest or kind).split(":")[0].replace("/", "_")
  parts = [p for p in os.path.normpath(rest).split(os.sep) if p]
  if len(parts) > 1 and parts[-1].upper() in ("HR", "GT"):
    return parts[-2]
  return parts[-1] if parts else "folder"


def load_eval_sets(specs: str, scale: int, data_dir: str = "") -> Dict[str, List[EvalPair]]:
  """Comma-separated dataset specs -> {dataset name: [EvalPair, ...]} ('' -> {})."""
  sets = {}
  for spec in filter(None, (s.strip() for s in specs.split(","))):
    pairs = []
    for image in input_pipeline.load_eval_images(spec, data_dir):
      lr, hr_crop = input_pipeline.make_eval_pair(image.hr, scale)
      pairs.append(EvalPair(image.name, lr, hr_crop, image.grayscale))
    sets[dataset_name(spec)] = pairs
  return sets


def make_sr_fn(apply_fn: Callable) -> Callable:
  """`(variables, lr [h, w, 3] float32) -> sr [h*s, w*s, 3] float32 in [0, 1]` (jit, per
  shape); `apply_fn` as `builders.make_apply_fn`."""
  @jax.jit
  def sr(variables, lr):
    return jnp.clip(apply_fn(variables, lr[None])[0], 0.0, 1.0)
  return lambda variables, lr: np.asarray(sr(variables, jnp.asarray(lr)))


def image_metrics(sr: np.ndarray, hr: np.ndarray, scale: int,
                  grayscale: bool = False) -> Dict[str, float]:
  """{psnr_y, ssim_y} of uint8 `[H, W, 3]` images, border `scale` cropped. For a grayscale
  file the single channel is compared with the gray of SR, not Y, as the MATLAB scripts behind
  published tables do (Set14 `bridge`; this moves its PSNR by 20*log10(255/219) = 1.32 dB)."""
  if grayscale:
    sr, hr = metrics_lib.to_gray_uint8(sr), hr[..., 0]
  return {"psnr_y": metrics_lib.psnr(sr, hr, crop_border=scale),
          "ssim_y": metrics_lib.ssim(sr, hr, crop_border=scale)}


def published_bicubic_metrics(hr: np.ndarray, scale: int,
                              grayscale: bool = False) -> Dict[str, float]:
  """{psnr_y, ssim_y} of bicubic as the published tables measure it, for uint8 HR `[H, W, 3]`
  mod-cropped to `scale`.

  SRCNN / VDSR protocol: Y = MATLAB `rgb2ycbcr` of the uint8 image (rounded to uint8; a grayscale
  file's own channel), LR = `imresize(Y, 1/s)` unrounded, SR = `imresize(LR, s)` rounded to
  uint8, compared on Y with the border `scale` cropped. It reproduces the printed Set5 / Set14
  bicubic rows to < 0.01 dB, where bicubic through the RGB model path (8-bit RGB LR) is up to
  0.02 dB off.
  """
  if grayscale:
    y = hr[..., 0]
  else:
    y = metrics_lib.to_uint8(color.rgb_to_y(hr.astype(np.float64) / 255.0))
  lr = imresize.imresize_np(y[..., None].astype(np.float64) / 255.0, 1.0 / scale)
  sr = metrics_lib.to_uint8(imresize.imresize_np(lr, scale))[..., 0]
  return {"psnr_y": metrics_lib.psnr(sr, y, crop_border=scale),
          "ssim_y": metrics_lib.ssim(sr, y, crop_border=scale)}


def evaluate_set(sr_fn: Callable, variables, pairs: List[EvalPair], scale: int):
  """Runs the model on every pair -> (summary {psnr_y, ssim_y, images}, [sr uint8 images])."""
  images, outputs = [], []
  for pair in pairs:
    sr = metrics_lib.to_uint8(sr_fn(variables, pair.lr))
    images.append({"name": pair.name, **image_metrics(sr, pair.hr, scale, pair.grayscale)})
    outputs.append(sr)
  summary = {"psnr_y": float(np.mean([i["psnr_y"] for i in images])),
             "ssim_y": float(np.mean([i["ssim_y"] for i in images])),
             "images": images}
  return summary, outputs


def sample_grid(pairs: List[EvalPair], srs: List[np.ndarray], scale: int,
                max_side: int = 192) -> np.ndarray:
  """uint8 [n*S, 4*S, 3]: rows of center crops LR (nearest) | bicubic | SR | HR."""
  side = min(max_side, *(min(p.hr.shape[:2]) for p in pairs))
  side -= side % scale
  rows = []
  for pair, sr in zip(pairs, srs):
    lr_up = np.repeat(np.repeat(pair.lr, scale, axis=0), scale, axis=1)
    bicubic = np.clip(imresize.imresize_np(pair.lr, scale), 0.0, 1.0)
    h, w = pair.hr.shape[:2]
    top, left = (h - side) // 2 // scale * scale, (w - side) // 2 // scale * scale
    crop = lambda x: x[top:top + side, left:left + side]
    tiles = [metrics_lib.to_uint8(crop(lr_up)), metrics_lib.to_uint8(crop(bicubic)),
             crop(sr), crop(pair.hr)]
    rows.append(np.concatenate(tiles, axis=1))
  return np.concatenate(rows, axis=0)


def validate(sr_fn: Callable, variables, val_sets: Dict[str, List[EvalPair]], scale: int, step: int,
             writer, workdir: str, num_samples: int, is_chief: bool) -> Dict[str, float]:
  """Evaluates every validation set, logs `val/<set>/{psnr_y,ssim_y}` and a sample grid.

  Returns {'val_psnr_y', 'val_ssim_y'}: the means over sets (what 'best' checkpoints rank by).
  """
  scalars, grids = {}, {}
  for name, pairs in val_sets.items():
    summary, srs = evaluate_set(sr_fn, variables, pairs, scale)
    scalars[f"val/{name}/psnr_y"] = summary["psnr_y"]
    scalars[f"val/{name}/ssim_y"] = summary["ssim_y"]
    if num_samples > 0:
      grids[f"samples/{name}"] = sample_grid(pairs[:num_samples], srs[:num_samples], scale)
  result = {
      "val_psnr_y": float(np.mean([v for k, v in scalars.items() if k.endswith("psnr_y")])),
      "val_ssim_y": float(np.mean([v for k, v in scalars.items() if k.endswith("ssim_y")]))}
  logging.info("Validation at step %d: %s", step,
               ", ".join(f"{k}={v:.4f}" for k, v in sorted(scalars.items())))
  writer.write_scalars(step, scalars)
  if grids:
    writer.write_images(step, {k: v[None] for k, v in grids.items()})
    if is_chief:
      sample_dir = os.path.join(workdir, "samples")
      os.makedirs(sample_dir, exist_ok=True)
      for key, grid in grids.items():
        name = key.split("/", 1)[1]
        Image.fromarray(grid).save(os.path.join(sample_dir, f"{name}_step{step:07d}.png"))
  return result


def restore_eval_variables(config: ml_collections.ConfigDict, workdir: str,
                           model) -> Tuple[dict, Optional[int]]:
  """(generator variables, step) of checkpoint `config.eval.checkpoint` in workdir, from a PSNR
  or a GAN run; ({}, None) for parameter-free models. EMA params when the run kept an EMA and
  `eval.use_ema`."""
  if not builders.has_params(model, config):
    return {}, None
  manager = checkpointing.create_manager(workdir, read_only=True)
  step = checkpointing.resolve_step(manager, str(config.eval.checkpoint))
  like = jax.eval_shape(builders.init_variables_fn(model, config), jax.random.key(0))
  use_ema = bool(config.ema_decay and config.eval.use_ema)
  variables = checkpointing.restore_generator(manager, step, like, use_ema,
                                              sharding.replicated(sharding.create_mesh()))
  logging.info("Restored step %d from %s", step, manager.directory)
  return variables, step


def _cell(summary: Optional[dict]) -> str:
  return f"{summary['psnr_y']:.2f} / {summary['ssim_y']:.4f}" if summary else "–"


def write_report(eval_dir: str) -> str:
  """Writes `<eval_dir>/report.md` from every `<dataset>_x<scale>.json` there (all scales
  evaluated so far): one row per dataset and scale, Y-PSNR / Y-SSIM of the model and, where
  measured, of bicubic. Returns the Markdown."""
  rows = []
  for file in sorted(os.listdir(eval_dir)):
    if file.endswith(".json"):
      with open(os.path.join(eval_dir, file)) as f:
        summary = json.load(f)
      if {"dataset", "scale", "psnr_y", "ssim_y"} <= set(summary):
        rows.append(summary)
  rows.sort(key=lambda s: (s["dataset"].lower(), s["scale"]))
  with_baseline = any("bicubic" in s for s in rows)
  model = rows[0].get("model", "model") if rows else "model"
  header = ["dataset", "scale"] + (["bicubic"] if with_baseline else []) + [model]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for s in rows:
    cells = [s["dataset"], f"x{s['scale']}"] + (
        [_cell(s.get("bicubic"))] if with_baseline else []) + [_cell(s)]
    lines.append("| " + " | ".join(cells) + " |")
  text = ("Y-PSNR (dB) / Y-SSIM, border = scale, LR by MATLAB bicubic (8-bit)"
          + ("; bicubic as the published tables (on Y)" if with_baseline else "") + ".\n\n"
          + "\n".join(lines) + "\n")
  with open(os.path.join(eval_dir, "report.md"), "w") as f:
    f.write(text)
  return text


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> Dict[str, dict]:
  """`--mode=eval`: restores a checkpoint (none for parameter-free models) and writes
  `<workdir>/eval/<dataset>_x<scale>.json` (+ SR PNGs) for every `config.eval.datasets` spec,
  and `<workdir>/eval/report.md` (see `write_report`); with `eval.bicubic_baseline` the JSON
  and the report also hold MATLAB bicubic on the same images."""
  config_base.validate(config)
  if not config.eval.datasets:
    raise ValueError("Nothing to evaluate: set --config.eval.datasets=<spec>[,<spec>...]")
  model = builders.model_from_config(config)
  val_sets = load_eval_sets(config.eval.datasets, config.scale, config.data.data_dir)
  variables, step = restore_eval_variables(config, workdir, model)
  sr_fn = make_sr_fn(builders.make_apply_fn(model))

  out_dir = os.path.join(workdir, "eval")
  os.makedirs(out_dir, exist_ok=True)
  results = {}
  for name, pairs in val_sets.items():
    summary, srs = evaluate_set(sr_fn, variables, pairs, config.scale)
    summary.update(dataset=name, scale=config.scale, model=config.model.name,
                   checkpoint_step=step)
    if config.eval.bicubic_baseline:
      baseline = [published_bicubic_metrics(p.hr, config.scale, p.grayscale) for p in pairs]
      summary["bicubic"] = {k: float(np.mean([b[k] for b in baseline])) for k in baseline[0]}
    results[name] = summary
    stem = f"{name}_x{config.scale}"
    with open(os.path.join(out_dir, stem + ".json"), "w") as f:
      json.dump(summary, f, indent=2)
    if config.eval.save_images and jax.process_index() == 0:
      image_dir = os.path.join(out_dir, stem)
      os.makedirs(image_dir, exist_ok=True)
      for pair, sr in zip(pairs, srs):
        Image.fromarray(sr).save(os.path.join(image_dir, pair.name + ".png"))
    logging.info("%s x%d: PSNR-Y %.4f dB, SSIM-Y %.4f (%d images)", name, config.scale,
                 summary["psnr_y"], summary["ssim_y"], len(pairs))
  if jax.process_index() == 0:
    logging.info("Report:\n%s", write_report(out_dir))
  return results
