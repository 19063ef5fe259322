"""Bicubic vs trained runs on degraded, codec-damaged and real low-quality inputs: JSON, Markdown
and side-by-side crops (issue #9's "what the real-world pipeline buys").

  python bench/realworld_comparison.py --model=bicubic-trained=/tmp/exp_bicubic \
      --model=real-world=/tmp/exp_realworld --which=latest --scale=4 \
      --degraded=/tmp/set14_degraded --codec_hr=/work/shared/datasets/Set5/HR \
      --real_lq=/work/shared/datasets/realworld --out=docs/realworld

Columns: MATLAB bicubic of the LR, then every `--model` (`<label>=<workdir>`, its `--which`
checkpoint, EMA parameters when kept), plus HR for the no-reference measures where HR exists.
Test sets (each optional):
* `--degraded`: the output folder of `python -m jaxsr.degrade` (`hr_XXX.png`, `lr_XXX.png`).
* `--codec_hr`: HR images, mod-cropped, LR by MATLAB bicubic x1/scale rounded to 8 bits (as
  evaluation does), then damaged by real codecs, one section per `--codec_conditions` entry:
  `clean` (none), `jpeg` (PIL JPEG at `--jpeg_quality`, 4:2:0, in memory), `noise` (Gaussian,
  sigma `--noise_sigma` 8-bit levels, per-channel, rounded and clipped; numpy seed
  (`--seed`, image index)), `noise_jpeg` (the same noise, then the JPEG).
* `--real_lq`: images without HR (any mode / bit depth -> 8-bit RGB: alpha dropped, gray
  replicated), centre-cropped to `--max_side` LR pixels; no-reference measures only.
PSNR / SSIM on Y (gray for gray HR files) with the border `scale` cropped, as `--mode=eval`
(`evaluate.image_metrics`); no-reference measures (`jaxsr.noref`) with the same border; LPIPS
only with `--lpips_backbone` (torchvision ImageNet weights are not shipped).
Written to `--out`: `results.json` (every number, per image and means, runs, steps, command),
`results.md` (a table per section: rows bicubic, models, HR) and `<section>_<image>.png` crops:
LR (nearest) | bicubic | models | HR, each zoomed by `--zoom`, of the `--crop_size` HR-pixel
window with the strongest HR (else bicubic) gradients, or `--box=<image>=top,left,size`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import functools  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple  # noqa: E402

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PIL import ImageDraw  # noqa: E402
from PIL import ImageFont  # noqa: E402

from jaxsr import builders  # noqa: E402
from jaxsr import checkpointing  # noqa: E402
from jaxsr import evaluate  # noqa: E402
from jaxsr import image_io  # noqa: E402
from jaxsr import inference  # noqa: E402
from jaxsr import metrics  # noqa: E402
from jaxsr import noref  # noqa: E402
from jaxsr import report  # noqa: E402
from jaxsr.ops import imresize  # noqa: E402

# pylint: disable=protected-access  # evaluate's means / JSON / measured form, report's table
# helpers, noref's Sobel gradients: reused rather than written twice.

CONDITIONS = ("clean", "jpeg", "noise", "noise_jpeg")  # Damage of the --codec_hr LR.

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("model", [], "'<label>=<workdir>' (repeatable), in column order.")
flags.DEFINE_string("which", "latest", "Checkpoint of every run: best | latest | <step>.")
flags.DEFINE_bool("use_ema", True, "Use the EMA parameters when a run kept an EMA.")
flags.DEFINE_integer("scale", 4, "Upscale factor (every run must have it).")
flags.DEFINE_string("degraded", None, "Output folder of `python -m jaxsr.degrade`.")
flags.DEFINE_string("codec_hr", None, "Folder of HR images for the codec conditions.")
flags.DEFINE_list("codec_conditions", list(CONDITIONS),
                  "Conditions of --codec_hr: clean, jpeg, noise, noise_jpeg.")
flags.DEFINE_integer("jpeg_quality", 30, "PIL JPEG quality of the jpeg conditions.")
flags.DEFINE_float("noise_sigma", 10.0, "Gaussian noise sigma in 8-bit levels.")
flags.DEFINE_integer("seed", 0, "numpy seed of the noise (with the image index).")
flags.DEFINE_string("real_lq", None, "Folder of real low-quality images (no HR).")
flags.DEFINE_integer("max_side", 256,
                     "--real_lq inputs are centre-cropped to this LR side (0: whole images).")
flags.DEFINE_integer("max_images", 0, "Images per set (the first by name); 0: all.")
flags.DEFINE_integer("tile", 0, "Tile side in LR pixels for the models (0: whole images).")
flags.DEFINE_integer("tile_pad", 10, "LR pixels of context around each tile.")
flags.DEFINE_integer("crops", 2, "Pictures per section: its first images (or --crop_names).")
flags.DEFINE_list("crop_names", [], "Picture these images (names as in results.json) instead.")
flags.DEFINE_multi_string("box", [], "'<image name>=top,left,size' crop in HR pixels.")
flags.DEFINE_integer("crop_size", 128, "Side of automatic crops in HR pixels.")
flags.DEFINE_integer("zoom", 2, "Nearest-neighbour enlargement of the crops.")
flags.DEFINE_string("lpips_backbone", "", "torchvision backbone .pth: measures LPIPS if given.")
flags.DEFINE_enum("lpips_net", "alex", ["alex", "vgg"], "LPIPS backbone.")
flags.DEFINE_string("lpips_weights", "", "LPIPS linear heads .pth ('' = installed lpips package).")
flags.DEFINE_string("out", None, "Output folder.", required=True)

RESERVED = ("LR", "bicubic", "HR")  # Column labels the script uses itself.
NO_LPIPS = "not measured (no weights offline)"
GAP = 4  # White pixels between panels.
LINE = 12  # Header text line height (PIL's default font).

Upscaler = Callable[[np.ndarray], np.ndarray]  # LR float32 [h, w, 3] in [0, 1] -> SR [sh, sw, 3].


class Section(NamedTuple):
  """A table of the report: `key` (file-name safe), `title`, `note`, and its pairs (`hr` None
  when there is no HR)."""
  key: str
  title: str
  note: str
  pairs: List[evaluate.EvalPair]


def read_rgb8(path: str) -> Tuple[np.ndarray, bool]:
  """Any image file -> (uint8 RGB `[H, W, 3]`, was gray): alpha dropped, gray replicated,
  16 bits rounded to 8. Raises `image_io.UnreadableImageError`."""
  image, info = image_io.read_image(path)
  rgb = image[..., :3] if image.shape[2] >= 3 else np.repeat(image[..., :1], 3, axis=2)
  return image_io.quantize(rgb, 8), info.mode in ("L", "LA")


def list_files(folder: str, prefix: str = "") -> List[str]:
  """Non-hidden files of `folder` whose names start with `prefix`, sorted, at most
  `--max_images`."""
  names = sorted(n for n in os.listdir(folder) if n.startswith(prefix) and not n.startswith(".")
                 and os.path.isfile(os.path.join(folder, n)))
  return [os.path.join(folder, n) for n in names[:FLAGS.max_images or None]]


def center_crop(image: np.ndarray, side: int) -> np.ndarray:
  """The centre `[min(H, side), min(W, side), C]` of `[H, W, C]`."""
  h, w = image.shape[:2]
  top, left = max(h - side, 0) // 2, max(w - side, 0) // 2
  return image[top:top + side, left:left + side]


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
  """uint8 RGB `[H, W, 3]` through PIL's JPEG encoder and decoder (in memory)."""
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
  return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
  """uint8 `[H, W, 3]` + N(0, sigma^2) 8-bit levels per pixel and channel, rounded, clipped."""
  noisy = image.astype(np.float64) + rng.normal(0.0, sigma, image.shape)
  return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def codec_lr(lr: np.ndarray, condition: str, index: int) -> np.ndarray:
  """8-bit LR uint8 `[h, w, 3]` damaged as `condition` says (the noise of image `index` is the
  same in `noise` and `noise_jpeg`)."""
  if condition.startswith("noise"):
    lr = add_noise(lr, FLAGS.noise_sigma, np.random.default_rng([FLAGS.seed, index]))
  if condition.endswith("jpeg"):
    lr = jpeg(lr, FLAGS.jpeg_quality)
  return lr


def degraded_section(folder: str, scale: int) -> Section:
  """`jaxsr.degrade` samples: pairs named by sample number (`000`), HR `[P, P, 3]`."""
  sources = {}
  if os.path.isfile(os.path.join(folder, "params.json")):
    with open(os.path.join(folder, "params.json")) as f:
      sources = {f"{r['sample']:03d}": os.path.basename(r["image"]) for r in json.load(f)}
  pairs = []
  for path in list_files(folder, prefix="hr_"):
    name = os.path.splitext(os.path.basename(path))[0][len("hr_"):]
    hr, _ = read_rgb8(path)
    lr, _ = read_rgb8(os.path.join(folder, f"lr_{name}.png"))
    if hr.shape != (lr.shape[0] * scale, lr.shape[1] * scale, 3):
      raise ValueError(f"{path} {hr.shape} is not x{scale} of its LR {lr.shape}")
    pairs.append(evaluate.EvalPair(name, lr.astype(np.float32) / 255.0, hr))
  if not pairs:
    raise ValueError(f"--degraded={folder}: no hr_XXX.png / lr_XXX.png pairs")
  crops = sorted({f"{p.hr.shape[0]}x{p.hr.shape[1]}" for p in pairs})
  note = (f"{len(pairs)} HR crops ({', '.join(crops)}) of "
          f"{', '.join(sorted({sources.get(p.name, '?') for p in pairs}))} and their LR made "
          f"once by `python -m jaxsr.degrade` (params.json there has every draw).")
  return Section("degraded", f"Degraded ({os.path.basename(os.path.normpath(folder))})", note,
                 pairs)


def codec_sections(folder: str, scale: int) -> List[Section]:
  """One section per `--codec_conditions` entry, on the same mod-cropped HR images."""
  spec = "folder:" + folder
  clean = evaluate.load_eval_sets(spec, scale)[evaluate.dataset_name(spec)]
  clean = clean[:FLAGS.max_images or None]
  sections = []
  for condition in FLAGS.codec_conditions:
    if condition not in CONDITIONS:
      raise ValueError(f"--codec_conditions: unknown '{condition}'; use {CONDITIONS}")
    what = {"clean": "no damage", "jpeg": f"PIL JPEG q{FLAGS.jpeg_quality}",
            "noise": f"Gaussian noise sigma {FLAGS.noise_sigma:g}",
            "noise_jpeg": f"Gaussian noise sigma {FLAGS.noise_sigma:g}, then PIL JPEG "
                          f"q{FLAGS.jpeg_quality}"}[condition]
    pairs = [p._replace(lr=codec_lr(metrics.to_uint8(p.lr), condition, i).astype(np.float32)
                        / 255.0) for i, p in enumerate(clean)]
    sections.append(Section(
        f"codec_{condition}", f"{evaluate.dataset_name(spec)}, LR + {what}",
        f"{len(pairs)} images, LR = MATLAB bicubic x1/{scale} of the mod-cropped HR (8-bit), "
        f"then {what}.", pairs))
  return sections


def real_lq_section(folder: str) -> Section:
  """Real low-quality inputs as LR (no HR), centre-cropped to `--max_side`."""
  pairs, skipped = [], []
  for path in list_files(folder):
    try:
      lr, gray = read_rgb8(path)
    except image_io.UnreadableImageError as e:
      logging.warning("Skipping %s", e)
      skipped.append(os.path.basename(path))
      continue
    name = os.path.splitext(os.path.basename(path))[0]
    lr = center_crop(lr, FLAGS.max_side) if FLAGS.max_side > 0 else lr
    pairs.append(evaluate.EvalPair(name, lr.astype(np.float32) / 255.0, None, gray))
  if not pairs:
    raise ValueError(f"--real_lq={folder}: no readable image")
  note = (f"{len(pairs)} inputs, as 8-bit RGB (alpha dropped, gray replicated; gray ones "
          f"measured on gray), centre-cropped to {FLAGS.max_side or 'any'} LR pixels; no HR."
          + (f" Skipped (unreadable): {', '.join(skipped)}." if skipped else ""))
  return Section("real", f"Real low-quality inputs ({os.path.basename(os.path.normpath(folder))})",
                 note, pairs)


def load_models(specs: Sequence[str], scale: int) -> Tuple[List[dict], Dict[str, Upscaler]]:
  """`<label>=<workdir>` specs -> (run records for the JSON, {label: upscaler})."""
  runs, upscalers = [], {}
  for spec in specs:
    label, _, workdir = spec.partition("=")
    if not label or not workdir or label in RESERVED or label in upscalers:
      raise ValueError(f"--model={spec}: expected a new <label>=<workdir>, label not in "
                       f"{RESERVED}")
    # The step is fixed first (a run still training may save a newer checkpoint meanwhile);
    # parameter-free models (bicubic) have none.
    config = inference.load_config(workdir)
    step = (checkpointing.resolve_step(checkpointing.create_manager(workdir, read_only=True),
                                       FLAGS.which)
            if builders.has_params(builders.model_from_config(config), config) else None)
    config, model, variables = inference.load_generator(
        workdir=workdir, which=FLAGS.which if step is None else str(step), use_ema=FLAGS.use_ema)
    if config.scale != scale:
      raise ValueError(f"--model={spec} is x{config.scale}, not --scale={scale}")
    upscalers[label] = functools.partial(
        inference.upscale_image, inference.make_upscaler(model, variables), scale=scale,
        tile=FLAGS.tile, tile_pad=FLAGS.tile_pad, multiple=inference.input_multiple(model))
    runs.append({"label": label, "workdir": os.path.abspath(workdir), "step": step,
                 "model": config.model.name, "ema": bool(config.ema_decay and FLAGS.use_ema),
                 "train_data": config.data.train,
                 "realworld": "degradation" in config})
    logging.info("%s: %s step %s (%s)", label, workdir, step, config.model.name)
  return runs, upscalers


def make_lpips() -> Tuple[Optional[Callable], str]:
  """(LPIPS of uint8 RGB images or None, what the report says about LPIPS)."""
  if not FLAGS.lpips_backbone:
    return None, NO_LPIPS
  config = ml_collections.ConfigDict({"eval": {
      "lpips": FLAGS.lpips_net, "lpips_weights": FLAGS.lpips_weights,
      "lpips_backbone": FLAGS.lpips_backbone}})
  return evaluate.make_lpips_measure(config), f"LPIPS-{FLAGS.lpips_net} (lower is better)"


def measure(image: np.ndarray, pair: evaluate.EvalPair, scale: int,
            lpips_fn: Optional[Callable] = None, reference: bool = True) -> dict:
  """The no-reference measures of uint8 RGB `image` `[sH, sW, 3]`, and its PSNR / SSIM (and
  LPIPS) against `pair.hr` when there is one and `reference`."""
  values = {}
  if pair.hr is not None and reference:
    values.update(evaluate.image_metrics(image, pair.hr, scale, pair.grayscale))
    if lpips_fn is not None:
      values["lpips"] = lpips_fn(image, pair.hr)
  values.update(noref.measure_all(evaluate._measured_form(image, pair.grayscale), scale))
  return values


def strongest_box(image: np.ndarray, size: int, scale: int) -> Tuple[int, int, int]:
  """(top, left, side) of the scale-aligned square of uint8 `[H, W, 3]` with the largest sum of
  Sobel gradient magnitude of Y; side = `size` (at most the image's, a multiple of scale)."""
  magnitude = noref._gradients(noref.luminance(image))[2]
  side = min(size, *magnitude.shape) // scale * scale
  total = np.pad(magnitude.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
  tops = np.arange(0, magnitude.shape[0] - side + 1, scale)[:, None]
  lefts = np.arange(0, magnitude.shape[1] - side + 1, scale)[None, :]
  sums = (total[tops + side, lefts + side] - total[tops, lefts + side]
          - total[tops + side, lefts] + total[tops, lefts])
  row, col = np.unravel_index(np.argmax(sums), sums.shape)
  return int(tops[row, 0]), int(lefts[0, col]), side


def side_by_side(title: str, panels: Sequence[Tuple[str, np.ndarray]], zoom: int) -> np.ndarray:
  """uint8 picture: a title line, then the panels (uint8 `[n, n, 3]`, zoomed by nearest) in a
  row, each under its label (one line, or two with a ' | ')."""
  font = ImageFont.load_default()
  tiles = [np.repeat(np.repeat(p, zoom, 0), zoom, 1) for _, p in panels]
  side = tiles[0].shape[0]
  header = LINE * 3 + GAP
  width = len(tiles) * (side + GAP) - GAP
  canvas = np.full((header + side, width, 3), 255, np.uint8)
  for i, tile in enumerate(tiles):
    canvas[header:, i * (side + GAP):i * (side + GAP) + side] = tile
  image = Image.fromarray(canvas)
  draw = ImageDraw.Draw(image)
  draw.text((2, 0), title, fill=(0, 0, 0), font=font)
  for i, (label, _) in enumerate(panels):
    for j, line in enumerate(label.split(" | ")):
      draw.text((i * (side + GAP) + 2, LINE * (1 + j)), line, fill=(0, 0, 0), font=font)
  return np.asarray(image)


def parse_boxes(specs: Sequence[str]) -> Dict[str, Tuple[int, int, int]]:
  """`<name>=top,left,size` -> {name: (top, left, size)}."""
  boxes = {}
  for spec in specs:
    name, _, box = spec.partition("=")
    values = tuple(int(v) for v in box.split(","))
    if not name or len(values) != 3:
      raise ValueError(f"--box={spec}: expected <image name>=top,left,size")
    boxes[name] = values
  return boxes


def picture(section: Section, pair: evaluate.EvalPair, outputs: Dict[str, np.ndarray],
            values: Dict[str, dict], scale: int, box: Optional[Tuple[int, int, int]]) -> str:
  """Writes `<out>/<section>_<image>.png` (LR nearest | bicubic | models | HR); its file name."""
  if box is None:
    box = strongest_box(pair.hr if pair.hr is not None else outputs["bicubic"],
                        FLAGS.crop_size, scale)
  height, width = outputs["bicubic"].shape[:2]
  side = min(box[2], height, width)  # A --box is moved and shrunk to fit the image.
  top, left = min(box[0], height - side), min(box[1], width - side)
  lr_up = np.repeat(np.repeat(metrics.to_uint8(pair.lr), scale, 0), scale, 1)
  images = [("LR (nearest)", lr_up)] + list(outputs.items())
  if pair.hr is not None:
    images.append(("HR", pair.hr))
  panels = []
  for label, image in images:
    v = values.get(label, {})
    text = (f"{label} | {v['psnr_y']:.2f} dB / {v['ssim_y']:.3f}" if "psnr_y" in v else
            f"{label} | sharpness {v['sharpness']:.3f}" if "sharpness" in v else label)
    panels.append((text, image[top:top + side, left:left + side]))
  title = f"{section.title}: {pair.name}, x{scale}, HR box top={top} left={left} size={side}"
  file = f"{section.key}_{pair.name}.png"
  Image.fromarray(side_by_side(title, panels, FLAGS.zoom)).save(
      os.path.join(FLAGS.out, file), optimize=True)
  return file


def run_section(section: Section, upscalers: Dict[str, Upscaler], scale: int,
                lpips_fn: Optional[Callable], boxes: Dict[str, Tuple[int, int, int]]) -> dict:
  """Every column on every pair of `section` -> its JSON record (means, images, pictures)."""
  seconds = dict.fromkeys(upscalers, 0.0)
  images, pictures = [], []
  for index, pair in enumerate(section.pairs):
    outputs, values = {}, {}
    for label, upscale in upscalers.items():
      start = time.perf_counter()
      outputs[label] = metrics.to_uint8(upscale(pair.lr))
      seconds[label] += time.perf_counter() - start
      values[label] = measure(outputs[label], pair, scale, lpips_fn)
    if pair.hr is not None:
      values["HR"] = measure(pair.hr, pair, scale, reference=False)
    images.append({"name": pair.name, "lr_shape": list(pair.lr.shape[:2]), "columns": values})
    wanted = (pair.name in FLAGS.crop_names if FLAGS.crop_names else index < FLAGS.crops)
    if wanted or pair.name in boxes:
      pictures.append(picture(section, pair, outputs, values, scale, boxes.get(pair.name)))
    logging.info("%s %s: %s", section.key, pair.name, ", ".join(
        f"{k} {v['psnr_y']:.2f} dB" if "psnr_y" in v else f"{k} sharp {v['sharpness']:.3f}"
        for k, v in values.items()))
  return {"title": section.title, "note": section.note,
          "mean": evaluate._mean_over_images([image["columns"] for image in images]),
          "images": images, "pictures": pictures,
          "upscale_seconds_with_compile": {k: round(v, 2) for k, v in seconds.items()}}


_HEADERS = {"psnr_y": "PSNR-Y (dB)", "ssim_y": "SSIM-Y", **report._MEASURE_HEADERS}


def section_markdown(key: str, record: dict) -> List[str]:
  """Markdown lines of one section: means table, per-image PSNR / SSIM, pictures."""
  mean = record["mean"]
  keys = [k for k in _HEADERS if any(k in v for v in mean.values())]
  rows = [[label] + [report._number(values.get(k)) for k in keys]
          for label, values in mean.items()]
  lines = [f"### {record['title']}", "", record["note"], "",
           f"Means over {len(record['images'])} images:", ""]
  lines += report._table(["image"] + [_HEADERS[k] for k in keys], rows)
  labels = [label for label in mean if label != "HR"]
  if "psnr_y" in keys:
    lines += ["", "Per image, PSNR-Y (dB) / SSIM-Y:", ""]
    lines += report._table(["image"] + labels, [
        [image["name"]] + [report._psnr_ssim(image["columns"][label]) for label in labels]
        for image in record["images"]])
  lines += [""] + [f"![{key} {file}]({file})" for file in record["pictures"]]
  return lines + [""]


def write_markdown(results: dict) -> str:
  """`results.md` from the results record; returns its text."""
  lines = ["# Bicubic vs trained runs on degraded and real low-quality inputs", "",
           f"x{results['scale']}, checkpoint `{results['which']}`. Command:", "",
           f"    {results['command']}", ""]
  lines += report._table(["run", "workdir", "step", "model", "LR of training", "EMA"], [
      [r["label"], f"`{r['workdir']}`", str(r["step"]), r["model"],
       "real-world degradations" if r["realworld"] else "bicubic", str(r["ema"])]
      for r in results["runs"]])
  lines += ["", f"PSNR-Y / SSIM-Y: Y channel (gray for gray HR files), border {results['scale']} "
            f"cropped. LPIPS: {results['lpips']}. No-reference measures (`jaxsr.noref`, same "
            "border), closer to HR is better; on their own:", ""]
  lines += [f"- {report._MEASURE_HEADERS[k]}: {text}, {better}"
            for k, (text, better) in noref.NOREF_KEYS.items()]
  lines.append("")
  for key, record in results["sections"].items():
    lines += section_markdown(key, record)
  text = "\n".join(lines)
  with open(os.path.join(FLAGS.out, "results.md"), "w") as f:
    f.write(text)
  return text


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not (FLAGS.degraded or FLAGS.codec_hr or FLAGS.real_lq):
    raise app.UsageError("Give at least one of --degraded, --codec_hr, --real_lq")
  checkpointing.quiet_orbax_info()
  scale = FLAGS.scale
  try:
    boxes = parse_boxes(FLAGS.box)
    runs, models = load_models(FLAGS.model, scale)
    lpips_fn, lpips_note = make_lpips()
    sections = ([degraded_section(FLAGS.degraded, scale)] if FLAGS.degraded else [])
    sections += codec_sections(FLAGS.codec_hr, scale) if FLAGS.codec_hr else []
    sections += [real_lq_section(FLAGS.real_lq)] if FLAGS.real_lq else []
  except ValueError as e:
    sys.exit(f"Error: {e}")
  os.makedirs(FLAGS.out, exist_ok=True)
  bicubic = lambda lr: np.clip(imresize.imresize_np(lr, scale), 0.0, 1.0)
  upscalers = {"bicubic": bicubic, **models}
  results = {"command": shlex.join([sys.executable] + sys.argv), "scale": scale,
             "which": FLAGS.which, "runs": runs, "lpips": lpips_note, "sections": {}}
  for section in sections:
    start = time.perf_counter()
    results["sections"][section.key] = evaluate._json_safe(
        run_section(section, upscalers, scale, lpips_fn, boxes))
    logging.info("%s: %d images in %.1f s", section.key, len(section.pairs),
                 time.perf_counter() - start)
  with open(os.path.join(FLAGS.out, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
  print(write_markdown(results))


if __name__ == "__main__":
  app.run(main)
