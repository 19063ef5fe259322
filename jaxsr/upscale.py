"""Super-resolves image files with a trained run: `python -m jaxsr.upscale`.

  python -m jaxsr.upscale --workdir=<run> -i photo.png -o photo_x4.png
  python -m jaxsr.upscale --checkpoint=<run>/checkpoints/5000 -i in_dir -o out_dir \
      --tile=256 --tile_pad=10 --outscale=3.5 --bf16
  python -m jaxsr.upscale --model=model.onnx -i photo.png -o photo_x4.png --tile=256
  python -m jaxsr.upscale --model=4x-realesrgan-x4plus -i photo.jpg -o photo_x4.png
  python -m jaxsr.upscale --list_models

`--model` is either an export of `python -m jaxsr.export` (an existing .onnx run in ONNX
Runtime, .tflite in the TFLite interpreter, .stablehlo by `jax.export`, or a SavedModel
directory in TF; its scale and input multiple come from the metadata.json written beside it) or
an OpenModelDB model id: the released weights are downloaded once (verified by sha256, into
`$JAXSR_CACHE`, default `~/.cache/jaxsr`), converted once into a cached workdir and run like
`--workdir` (`jaxsr.hub`; `--model_registry` adds entries, `--weights` gives a local copy of the
file, `--list_models` lists them). Either way the same tiling, bit-depth and alpha handling.

The conveniences of Real-ESRGAN's `inference_realesrgan.py`, with absl flags: `-i` a file, a
folder (its files, sorted) or comma-separated files and folders; `-o` a folder, written as
`<output>/<stem>_<suffix>.<ext>`, or, for a single input file, a file path with an image
extension. `--tile` cuts the image into overlapping tiles of that many LR pixels, each with
`--tile_pad` pixels of context (output equal to untiled output when the pad covers the model's
receptive field; memory bounded by the tile; see `jaxsr.inference`). `--outscale` resizes the
result to any factor (MATLAB bicubic). Outputs keep the input's bit depth (8 or 16-bit PNG) and
mode (gray, gray+alpha, RGB, RGBA; alpha upscaled on its own, by the model or bicubic); images
with alpha are written as PNG whatever `--ext`. Files that cannot be read are skipped with a
warning naming the file and why (not an image, corrupt, truncated, empty, permission denied,
dangling symlink, symlink loop, over PIL's ~89-Mpixel decompression-bomb limit); the exit
status is 1 if an image failed or none was written. Progress bars (images,
tiles) are drawn on terminals; a log line per image gives its time.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sys  # noqa: E402
import time  # noqa: E402
from typing import Callable, List, Tuple  # noqa: E402

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import numpy as np  # noqa: E402
import tqdm  # noqa: E402

from jaxsr import checkpointing  # noqa: E402
from jaxsr import cli  # noqa: E402
from jaxsr import compilation_cache  # noqa: E402
from jaxsr import image_io  # noqa: E402
from jaxsr import inference  # noqa: E402
from jaxsr.export import runtimes  # noqa: E402
from jaxsr.hub import cli_flags as hub_flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "Image file, folder, or comma-separated files/folders.",
                    short_name="i")
flags.DEFINE_string("output", None, "Output folder, or output file for a single input file.",
                    short_name="o")
flags.DEFINE_string("workdir", None, "Training run (config.json + checkpoints/).")
flags.DEFINE_string("checkpoint", None,
                    "Instead of --workdir: <workdir>/checkpoints/<step> (config two levels up).")
flags.DEFINE_string("model", None, "Instead of --workdir: an exported model (.onnx, .tflite, "
                    ".stablehlo or a SavedModel directory) from python -m jaxsr.export, or an "
                    "OpenModelDB model id (--list_models).")
flags.DEFINE_integer("threads", 0, "--model: intra-op threads of ONNX Runtime / TFLite "
                     "(0: the runtime's default).", lower_bound=0)
flags.DEFINE_string("which", "best", "Checkpoint of --workdir: best | latest | <step>.")
flags.DEFINE_bool("use_ema", True, "Use the EMA parameters when the run kept an EMA.")
flags.DEFINE_integer("tile", 0, "Tile side in input pixels; 0: whole image at once.",
                     short_name="t", lower_bound=0)
flags.DEFINE_integer("tile_pad", 10, "Input pixels of context around each tile.",
                     lower_bound=0)
flags.DEFINE_float("outscale", None, "Final upscale factor (default: the model's scale).",
                   short_name="s")
flags.register_validator("outscale", lambda value: value is None or value > 0,
                         "--outscale must be > 0")
flags.DEFINE_integer("max_pixels", None,
                     "Skip (by name) input images with more pixels than this (default: PIL's "
                     "decompression-bomb limit, ~89 M); 0: only PIL's own error limit.",
                     lower_bound=0)
flags.DEFINE_bool("bf16", False, "Compute the model in bfloat16 (parameters stay float32).")
flags.DEFINE_string("suffix", "out", "Suffix of output names: <stem>_<suffix>.<ext> ('' none).")
flags.DEFINE_enum("ext", "auto", ["auto", "png", "jpg"],
                  "Output format in folder mode; auto: the input's.")
flags.DEFINE_enum("alpha_upsampler", "model", list(inference.ALPHA_UPSAMPLERS),
                  "How alpha channels are upscaled.")


def list_inputs(spec: str) -> List[str]:
  """Comma-separated files and folders -> files (a folder's non-hidden entries but its
  subfolders, sorted: dangling links, link loops and FIFOs too, for the reader to skip by name)."""
  paths = []
  for item in filter(None, (s.strip() for s in spec.split(","))):
    if os.path.isdir(item):
      paths += [os.path.join(item, name) for name in sorted(os.listdir(item))
                if not name.startswith(".") and not os.path.isdir(os.path.join(item, name))]
    elif os.path.lexists(item):
      paths.append(item)
    else:
      raise app.UsageError(f"--input: {item} does not exist")
  return paths


def writes_single_file(spec: str, output: str) -> bool:
  """True if `output` is the output file itself: one input file and an image extension."""
  items = [s.strip() for s in spec.split(",") if s.strip()]
  return (len(items) == 1 and not os.path.isdir(items[0]) and not os.path.isdir(output)
          and image_io.format_for_path(output) is not None)


def output_path(path: str, info: image_io.ImageInfo, folder: str, suffix: str = "out",
                ext: str = "auto") -> str:
  """`<folder>/<stem>_<suffix>.<ext>`; ext 'auto' keeps the input's extension (png if unknown),
  and images with alpha become png (JPEG has no alpha)."""
  stem, in_ext = os.path.splitext(os.path.basename(path))
  if ext == "auto":
    ext = in_ext[1:].lower() if image_io.format_for_path(path) else "png"
  if image_io.has_alpha(info.mode) and image_io.FORMATS.get("." + ext) == "jpeg":
    ext = "png"
  return os.path.join(folder, f"{stem}_{suffix}.{ext}" if suffix else f"{stem}.{ext}")


def exported_upscaler(loaded: runtimes.ExportedModel) -> Callable[[np.ndarray], np.ndarray]:
  """`lr [h, w, 3] -> sr [h*s, w*s, 3]` float32 in [0, 1] through an exported model."""
  return lambda lr: np.clip(loaded.run(np.ascontiguousarray(lr[None], np.float32))[0], 0.0,
                            1.0)


def is_export_path(model: str) -> bool:
  """True when `--model` names an exported file or SavedModel (it exists, or it ends like
  one), False for an OpenModelDB model id."""
  return (os.path.exists(model) or os.sep in model
          or os.path.splitext(model)[1].lower() in runtimes.EXTENSIONS)


def load_upscaler() -> Tuple[str, int, Callable[[np.ndarray], np.ndarray], int]:
  """(description, scale, sr_fn, input multiple) of --model, or of --workdir / --checkpoint;
  ValueError / ImportError with the fix when they cannot be loaded."""
  model_id = FLAGS.model if FLAGS.model and not is_export_path(FLAGS.model) else None
  hub_flags.check_unused(model_id)
  if FLAGS.model and (FLAGS.workdir or FLAGS.checkpoint):
    raise ValueError("Pass --model or --workdir / --checkpoint, not both.")
  workdir = hub_flags.workdir_of(model_id) if model_id else FLAGS.workdir
  if FLAGS.model and not model_id:
    if FLAGS.bf16:
      raise ValueError("--bf16 does not apply to --model: an export computes in the dtype it "
                       "was exported with (python -m jaxsr.export --dtype).")
    loaded = runtimes.load(FLAGS.model, FLAGS.threads)
    label = f"{FLAGS.model} ({loaded.format}) x{loaded.scale}"
    return label, loaded.scale, exported_upscaler(loaded), loaded.multiple
  if not (workdir or FLAGS.checkpoint):
    raise ValueError("Pass --workdir, --checkpoint or --model.")
  config, model, variables = inference.load_generator(
      workdir or "", FLAGS.checkpoint or "", FLAGS.which, FLAGS.use_ema,
      dtype="bfloat16" if FLAGS.bf16 else "float32")
  label = f"{model_id or config.model.name} x{config.scale} ({config.dtype})"
  return (label, config.scale, inference.make_upscaler(model, variables),
          inference.input_multiple(model))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if hub_flags.LIST_MODELS.value:
    hub_flags.print_models()
    return
  missing = [name for name in ("input", "output") if not FLAGS[name].value]
  if missing:
    raise app.UsageError(f"Flag --{missing[0]} must have a value other than None.")
  compilation_cache.enable()  # Before anything compiles.
  checkpointing.quiet_orbax_info()
  inputs = list_inputs(FLAGS.input)
  if not inputs:
    raise app.UsageError(f"--input={FLAGS.input}: no files")
  single_file = writes_single_file(FLAGS.input, FLAGS.output)
  label, scale, sr_fn, multiple = load_upscaler()  # Errors: one line, by jaxsr.cli.
  if not single_file:
    os.makedirs(FLAGS.output, exist_ok=True)
  elif os.path.dirname(FLAGS.output):
    os.makedirs(os.path.dirname(FLAGS.output), exist_ok=True)
  logging.info("%s, %d input file(s), tile %d, tile_pad %d, outscale %s", label, len(inputs),
               FLAGS.tile, FLAGS.tile_pad, FLAGS.outscale or scale)

  written, skipped, failed = 0, [], 0
  for path in tqdm.tqdm(inputs, desc="images", unit="image", disable=None):
    try:
      image, info = image_io.read_image(path, max_pixels=FLAGS.max_pixels)
    except image_io.UnreadableImageError as e:
      logging.warning("Skipping unreadable file %s", e)
      skipped.append(f"{os.path.basename(path)} ({e.reason})")
      continue
    dest = FLAGS.output if single_file else output_path(path, info, FLAGS.output, FLAGS.suffix,
                                                        FLAGS.ext)
    if os.path.exists(dest) and os.path.samefile(dest, path):
      logging.error("Not overwriting the input %s: set --suffix or another --output", path)
      failed += 1
      continue
    start = time.perf_counter()
    with tqdm.tqdm(desc="tiles", unit="tile", leave=False, disable=None) as bar:

      def progress(done, total, bar=bar):
        if bar.total != total:
          bar.reset(total)
        bar.update(done - bar.n)

      try:
        out = inference.upscale(sr_fn, image, scale, FLAGS.tile, FLAGS.tile_pad,
                                FLAGS.outscale, FLAGS.alpha_upsampler, progress, multiple)
        image_io.write_image(dest, out, info)
      except ValueError as e:
        logging.error("Failed on %s: %s", path, e)
        failed += 1
        continue
    written += 1
    logging.info("%s (%dx%d %s %d-bit) -> %s (%dx%d) in %.2f s", path, image.shape[1],
                 image.shape[0], info.mode, info.bit_depth, dest, out.shape[1], out.shape[0],
                 time.perf_counter() - start)
  logging.info("Wrote %d image(s); skipped %d unreadable, %d failed.%s", written, len(skipped),
               failed, "".join(f"\n  skipped {name}" for name in skipped))
  if failed or not written:
    sys.exit(1)


if __name__ == "__main__":
  cli.run(main)
