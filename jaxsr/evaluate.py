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
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from absl import logging
from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from jaxsr import builders
from jaxsr import checkpointing
from jaxsr import config_base
from jaxsr import distributed_eval
from jaxsr import image_io
from jaxsr import metrics as metrics_lib
from jaxsr import noref as noref_lib
from jaxsr import report
from jaxsr import report_html
from jaxsr import sharding
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
  # Imported here: TensorFlow (~450 MiB RSS, ~7 s to import) only reads datasets; inference
  # (`jaxsr.upscale`) uses the rest of this module without it.
  from jaxsr.data import input_pipeline  # pylint: disable=g-import-not-at-top
  sets = {}
  for spec in filter(None, (s.strip() for s in specs.split(","))):
    pairs = []
    for image in input_pipeline.load_eval_images(spec, data_dir, scale=scale):
      lr, hr_crop = input_pipeline.make_eval_pair(image.hr, scale)
      pairs.append(EvalPair(image.name, lr, hr_crop, image.grayscale))
    sets[dataset_name(spec)] = pairs
  return sets


def make_sr_fn(apply_fn: Callable) -> Callable:
  """`(variables, lr [h, w, 3] float32) -> sr [h*s, w*s, 3] float32 in [0, 1]` (jit, per
  shape, numpy out; its `device_fn`: the same on device arrays, not waited for);
  `apply_fn` as `builders.make_apply_fn`."""
  @jax.jit
  def sr(variables, lr):
    return jnp.clip(apply_fn(variables, lr[None])[0], 0.0, 1.0)
  sr_fn = lambda variables, lr: np.asarray(sr(variables, jnp.asarray(lr)))
  sr_fn.device_fn = sr  # Device arrays in and out: async dispatch (`distributed_eval`).
  return sr_fn


def image_statistics(sr: np.ndarray, hr: np.ndarray, scale: int,
                     grayscale: bool = False) -> Dict[str, tuple]:
  """{psnr_y: (sum of squared errors, count), ssim_y: ([SSIM map sum], count)} of uint8
  `[H, W, 3]` images, border `scale` cropped: what `image_metrics` reduces. For a grayscale file
  the single channel is compared with the gray of SR, not Y, as the MATLAB scripts behind
  published tables do (Set14 `bridge`; this moves its PSNR by 20*log10(255/219) = 1.32 dB)."""
  if grayscale:
    sr, hr = metrics_lib.to_gray_uint8(sr), hr[..., 0]
  return {"psnr_y": metrics_lib.squared_error(sr, hr, crop_border=scale),
          "ssim_y": metrics_lib.ssim_sums(sr, hr, crop_border=scale)}


def metrics_from_statistics(stats: Dict[str, tuple]) -> Dict[str, float]:
  """`image_statistics` -> {psnr_y, ssim_y}, bitwise `metrics.psnr` / `metrics.ssim`."""
  return {"psnr_y": metrics_lib.psnr_from_squared_error(*stats["psnr_y"]),
          "ssim_y": metrics_lib.ssim_from_sums(*stats["ssim_y"])}


def image_metrics(sr: np.ndarray, hr: np.ndarray, scale: int,
                  grayscale: bool = False) -> Dict[str, float]:
  """{psnr_y, ssim_y} of uint8 `[H, W, 3]` images; see `image_statistics`."""
  return metrics_from_statistics(image_statistics(sr, hr, scale, grayscale))


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


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
  """uint8 `[h*s, w*s, 3]`: MATLAB bicubic of float LR `[h, w, 3]` in [0, 1] (the RGB bicubic
  that no-reference measures, LPIPS, sample grids and report crops show beside SR)."""
  return metrics_lib.to_uint8(imresize.imresize_np(lr, scale))


# (sr uint8 [H, W, 3], pair) -> extra per-image measures; see `make_image_measures`.
ImageMeasures = Callable[[np.ndarray, EvalPair], dict]


def _measured_form(image: np.ndarray, grayscale: bool) -> np.ndarray:
  """uint8 RGB `[H, W, 3]` -> what is measured: itself, or its gray `[H, W]` for gray files."""
  return metrics_lib.to_gray_uint8(image) if grayscale else image


def make_image_measures(scale: int, noref: bool = True,
                        lpips_fn: Optional[Callable] = None) -> Optional[ImageMeasures]:
  """Perceptual and no-reference measures of an SR image, of bicubic on the same LR, and of HR.

  Args:
    scale: SR scale (no-reference measures crop this border, as PSNR does).
    noref: compute `jaxsr.noref.measure_all` (contrast, sharpness, edge width, aliasing).
    lpips_fn: `(a, b) -> float` LPIPS of uint8 RGB `[H, W, 3]` images, or None.

  Returns:
    `measures(sr, pair) -> {lpips?, <noref keys>?, 'bicubic': {...}, 'hr': {<noref keys>}}`
    (the model's values at the top, like `psnr_y`), or None when nothing is asked.
  """
  if not noref and lpips_fn is None:
    return None

  def measures(sr: np.ndarray, pair: EvalPair) -> dict:
    bicubic = bicubic_upscale(pair.lr, scale)
    result = {}
    for key, image in (("sr", sr), ("bicubic", bicubic), ("hr", pair.hr)):
      values = {}
      if lpips_fn is not None and key != "hr":
        values["lpips"] = float(lpips_fn(image, pair.hr))
      if noref:
        values.update(noref_lib.measure_all(_measured_form(image, pair.grayscale), scale))
      if key == "sr":
        result.update(values)
      else:
        result[key] = values
    return result

  return measures


def _mean_over_images(images: List[dict]) -> dict:
  """Mean over images of every number in the per-image dicts (nested dicts kept, NaN ignored,
  None when all are NaN); other entries (names) dropped."""
  means = {}
  for key, value in images[0].items():
    if isinstance(value, dict):
      means[key] = _mean_over_images([image[key] for image in images])
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
      values = np.array([image[key] for image in images], np.float64)
      means[key] = float(np.nanmean(values)) if np.isfinite(values).any() else None
  return means


def evaluate_set(sr_fn: Callable, variables, pairs: List[EvalPair], scale: int,
                 measures: Optional[ImageMeasures] = None,
                 extra: Optional[Callable[[int, np.ndarray, EvalPair], Any]] = None
                 ) -> Tuple[dict, list]:
  """Runs the model on every pair, each image on one device of one process
  (`distributed_eval.map_images`) -> (summary, [extra(i, sr uint8 [H, W, 3], pair)]).

  The summary holds the means over images of `psnr_y`, `ssim_y` and of what `measures` adds
  (see `make_image_measures`), and `images`: the per-image values with their `name`; every
  process gets the same, reduced from the same values in the same order. `extra` (None when
  not given) runs on the process of image i; what it returns is gathered (keep it small).
  """
  def finish(i, sr):
    sr, pair = metrics_lib.to_uint8(sr), pairs[i]
    return (image_statistics(sr, pair.hr, scale, pair.grayscale),
            measures(sr, pair) if measures is not None else {},
            extra(i, sr, pair) if extra is not None else None)

  results = distributed_eval.map_images(sr_fn, variables, [p.lr for p in pairs], finish)
  images = [{"name": pair.name, **metrics_from_statistics(stats), **measured}
            for pair, (stats, measured, _) in zip(pairs, results)]
  return {**_mean_over_images(images), "images": images}, [r[2] for r in results]


def grid_windows(pairs: List[EvalPair], scale: int,
                 max_side: int = 192) -> List[Tuple[slice, slice]]:
  """The (rows, columns) of each pair's HR-sized center crop in `sample_grid`: S x S, S the
  smallest image side (at most `max_side`) rounded down to a multiple of `scale`."""
  side = min(max_side, *(min(p.hr.shape[:2]) for p in pairs))
  side -= side % scale
  windows = []
  for pair in pairs:
    h, w = pair.hr.shape[:2]
    top, left = (h - side) // 2 // scale * scale, (w - side) // 2 // scale * scale
    windows.append((slice(top, top + side), slice(left, left + side)))
  return windows


def sample_grid(pairs: List[EvalPair], srs: List[np.ndarray], scale: int,
                max_side: int = 192, srs_cropped: bool = False) -> np.ndarray:
  """uint8 [n*S, 4*S, 3]: rows of center crops LR (nearest) | bicubic | SR | HR; `srs` uint8
  SR images, or with `srs_cropped` their `grid_windows` crops."""
  rows = []
  for pair, sr, window in zip(pairs, srs, grid_windows(pairs, scale, max_side)):
    lr_up = np.repeat(np.repeat(pair.lr, scale, axis=0), scale, axis=1)
    tiles = [metrics_lib.to_uint8(lr_up[window]), bicubic_upscale(pair.lr, scale)[window],
             sr if srs_cropped else sr[window], pair.hr[window]]
    rows.append(np.concatenate(tiles, axis=1))
  return np.concatenate(rows, axis=0)


def validate(sr_fn: Callable, variables, val_sets: Dict[str, List[EvalPair]], scale: int, step: int,
             writer, workdir: str, num_samples: int, is_chief: bool) -> Dict[str, float]:
  """Evaluates every validation set, logs `val/<set>/{psnr_y,ssim_y}` and a sample grid
  (images spread over all devices of all processes, see `evaluate_set`; same on every process),
  and on the chief `<workdir>/samples/<set>_step<step>.png` (workdir local or `gs://...`).

  Returns {'val_psnr_y', 'val_ssim_y'}: the means over sets (what 'best' checkpoints rank by).
  """
  scalars, grids = {}, {}
  for name, pairs in val_sets.items():
    samples = pairs[:num_samples]
    windows = grid_windows(samples, scale) if samples else []
    # The processes of the sample images send only their grid crops.
    crop = lambda i, sr, _, w=windows: sr[w[i]].copy() if i < len(w) else None
    summary, crops = evaluate_set(sr_fn, variables, pairs, scale, extra=crop)
    scalars[f"val/{name}/psnr_y"] = summary["psnr_y"]
    scalars[f"val/{name}/ssim_y"] = summary["ssim_y"]
    if samples:
      grids[f"samples/{name}"] = sample_grid(samples, crops[:len(samples)], scale,
                                             srs_cropped=True)
  result = {
      "val_psnr_y": float(np.mean([v for k, v in scalars.items() if k.endswith("psnr_y")])),
      "val_ssim_y": float(np.mean([v for k, v in scalars.items() if k.endswith("ssim_y")]))}
  logging.info("Validation at step %d: %s", step,
               ", ".join(f"{k}={v:.4f}" for k, v in sorted(scalars.items())))
  writer.write_scalars(step, scalars)
  if grids:
    writer.write_images(step, {k: v[None] for k, v in grids.items()})
    if is_chief:
      sample_dir = epath.Path(workdir) / "samples"
      sample_dir.mkdir(parents=True, exist_ok=True)
      for key, grid in grids.items():
        name = key.split("/", 1)[1]
        image_io.save_pil(sample_dir / f"{name}_step{step:07d}.png", Image.fromarray(grid))
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


def _json_safe(value):
  """NaN/inf -> None (JSON has no NaN), recursively."""
  if isinstance(value, dict):
    return {k: _json_safe(v) for k, v in value.items()}
  if isinstance(value, list):
    return [_json_safe(v) for v in value]
  if isinstance(value, float) and not np.isfinite(value):
    return None
  return value


def make_lpips_measure(config: ml_collections.ConfigDict) -> Optional[Callable]:
  """`(a, b) -> LPIPS` of uint8 RGB `[H, W, 3]` images per `config.eval.lpips*`, or None."""
  if not config.eval.lpips:
    return None
  from jaxsr import lpips  # pylint: disable=g-import-not-at-top
  lin_path, backbone_path = lpips.resolve_lpips_weights(
      config.eval.lpips, config.eval.lpips_weights, config.eval.lpips_backbone)
  distance = lpips.make_lpips_fn(
      config.eval.lpips, lpips.load_lpips_params(config.eval.lpips, lin_path, backbone_path))
  return lambda a, b: float(distance(a[None] / 255.0, b[None] / 255.0)[0])


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> Dict[str, dict]:
  """`--mode=eval`: restores a checkpoint (none for parameter-free models) and writes
  `<workdir>/eval/<dataset>_x<scale>.json` (+ SR PNGs, each written by the process that made
  it; the rest by process 0) for every `config.eval.datasets` spec, crops of bicubic / SR / HR
  per image under `<workdir>/eval/report_images` (the JSON's `report_crop`: [top, left, height,
  width] in HR pixels, None if not written), and `<workdir>/eval/report.md` (see `jaxsr.report`)
  and `report.html` (`jaxsr.report_html`); with `eval.bicubic_baseline` the JSON (per image and
  mean) and the reports also hold bicubic PSNR/SSIM measured as the published tables are; with
  `eval.noref` / `eval.lpips` the no-reference measures / LPIPS of SR, bicubic and HR
  (`make_image_measures`). The workdir may be local or `gs://...` (all through `etils.epath`)."""
  config_base.validate(config)
  if not config.eval.datasets:
    raise ValueError("Nothing to evaluate: set --config.eval.datasets=<spec>[,<spec>...]")
  model = builders.model_from_config(config)
  val_sets = load_eval_sets(config.eval.datasets, config.scale, config.data.data_dir)
  variables, step = restore_eval_variables(config, workdir, model)
  sr_fn = make_sr_fn(builders.make_apply_fn(model))
  measures = make_image_measures(config.scale, config.eval.noref, make_lpips_measure(config))

  out_dir = epath.Path(workdir) / "eval"
  out_dir.mkdir(parents=True, exist_ok=True)
  results = {}
  for name, pairs in val_sets.items():
    stem = f"{name}_x{config.scale}"
    image_dir = out_dir / stem
    if config.eval.save_images:
      image_dir.mkdir(parents=True, exist_ok=True)
    report_html.make_crop_dirs(out_dir, stem)

    def extra(unused_i, sr, pair, image_dir=image_dir, stem=stem):  # On the image's process.
      if config.eval.save_images:
        image_io.save_pil(image_dir / (pair.name + ".png"), Image.fromarray(sr))
      crop = report_html.save_crops(
          out_dir, stem, pair.name, report_html.crop_window(pair.hr, config.scale),
          {"bicubic": bicubic_upscale(pair.lr, config.scale), "sr": sr, "hr": pair.hr})
      baseline = (published_bicubic_metrics(pair.hr, config.scale, pair.grayscale)
                  if config.eval.bicubic_baseline else None)
      return crop, baseline

    summary, extras = evaluate_set(sr_fn, variables, pairs, config.scale, measures, extra)
    summary.update(dataset=name, scale=config.scale, model=config.model.name,
                   checkpoint_step=step)
    for image, (crop, baseline) in zip(summary["images"], extras):
      image["report_crop"] = crop
      if baseline is not None:
        image.setdefault("bicubic", {}).update(baseline)
    if config.eval.bicubic_baseline:
      summary.setdefault("bicubic", {}).update(
          {k: float(np.mean([b[k] for _, b in extras])) for k in extras[0][1]})
    summary = _json_safe(summary)
    results[name] = summary
    if jax.process_index() == 0:
      (out_dir / (stem + ".json")).write_text(json.dumps(summary, indent=2))
    logging.info("%s x%d: PSNR-Y %.4f dB, SSIM-Y %.4f (%d images)", name, config.scale,
                 summary["psnr_y"], summary["ssim_y"], len(pairs))
  if jax.process_index() == 0:
    logging.info("Report:\n%s", report.write_report(str(out_dir)))
    report_html.write_html_report(str(out_dir))
  return results
