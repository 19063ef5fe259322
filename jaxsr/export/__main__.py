"""Exports a trained generator for deployment: `python -m jaxsr.export`.

  python -m jaxsr.export --workdir=<run> --format=onnx --output=model.onnx
  python -m jaxsr.export --workdir=<run> --which=5000 --format=savedmodel --output=sm/
  python -m jaxsr.export --checkpoint=<run>/checkpoints/5000 --format=tflite
  python -m jaxsr.export --workdir=<run> --format=stablehlo --dtype=bfloat16
  python -m jaxsr.export --model=4x-realesrgan-x4plus --format=onnx  # -> ./4x-realesrgan-x4plus.onnx

Formats: onnx (jaxsr's jaxpr translator, opset 18; needs `pip install 'jaxsr[onnx]'`),
savedmodel (jax2tf; signatures serving_default float32 and serving_uint8), tflite (converted
from that SavedModel), stablehlo (`jax.export`, for CPU / CUDA / TPU). Every export takes any
batch and image size (multiples of the model's `input_multiple`; see its metadata.json, written
beside it). After writing, the export is loaded in its own runtime and compared with jaxsr on
random odd-sized inputs (`--verify`, on by default); a difference above 1e-4 (5e-2 for 16-bit
--dtype) is an error. `--output` defaults to `<workdir>/export/model.<ext>`, or for `--model=<id>`
(an OpenModelDB id, downloaded and converted once into the cache of `jaxsr.hub`, as
`jaxsr.upscale --model=<id>` does) to `<id>.<ext>` (`<id>_savedmodel/`) in the current directory.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import shlex  # noqa: E402
import sys  # noqa: E402

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from jaxsr import checkpointing  # noqa: E402
from jaxsr import cli  # noqa: E402
from jaxsr import compilation_cache  # noqa: E402
from jaxsr import inference  # noqa: E402
from jaxsr.export import exporter  # noqa: E402
from jaxsr.export import metadata as metadata_lib  # noqa: E402
from jaxsr.export import runtimes  # noqa: E402
from jaxsr.hub import cli_flags as hub_flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training run (config.json + checkpoints/).")
flags.DEFINE_string("checkpoint", None,
                    "Instead of --workdir: <workdir>/checkpoints/<step> (config two levels up).")
flags.DEFINE_string("model", None, "Instead of --workdir: an OpenModelDB model id "
                    "(--list_models lists them).")
flags.DEFINE_string("which", "best", "Checkpoint of --workdir: best | latest | <step>.")
flags.DEFINE_bool("use_ema", True, "Export the EMA parameters when the run kept an EMA.")
flags.DEFINE_enum("format", None, list(runtimes.FORMATS), "Export format.")
flags.DEFINE_string("output", None, "Output file (directory for savedmodel); default "
                    "<workdir>/export/model.<ext>.")
flags.DEFINE_enum("dtype", "float32", list(exporter.DTYPES),
                  "Computation dtype of the exported model (input and output stay float32).")
flags.DEFINE_bool("verify", True, "Run the export in its runtime and compare with jaxsr.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if hub_flags.LIST_MODELS.value:
    hub_flags.print_models()
    return
  if not FLAGS.format:
    raise app.UsageError("Flag --format must have a value other than None.")
  compilation_cache.enable()  # Before anything compiles.
  checkpointing.quiet_orbax_info()
  # ValueError / ImportError / missing files end in one line (jaxsr.cli).
  hub_flags.check_unused(FLAGS.model)
  if FLAGS.model and (FLAGS.workdir or FLAGS.checkpoint):
    raise ValueError("Pass --model or --workdir / --checkpoint, not both.")
  workdir = hub_flags.workdir_of(FLAGS.model) if FLAGS.model else FLAGS.workdir
  config, model, variables = inference.load_generator(
      workdir or "", FLAGS.checkpoint or "", FLAGS.which, FLAGS.use_ema, FLAGS.dtype)
  program = exporter.program_from_generator(config, model, variables)
  workdir = workdir or checkpointing.split_checkpoint_path(FLAGS.checkpoint)[0]
  output = FLAGS.output or (
      exporter.default_output(FLAGS.format, workdir) if not FLAGS.model else
      FLAGS.model + (os.path.splitext(exporter.default_output(FLAGS.format, ""))[1]
                     or "_savedmodel"))
  source = {"workdir": os.path.abspath(workdir), "which": FLAGS.which,
            "step": int(config.eval.checkpoint), "use_ema": FLAGS.use_ema}
  if FLAGS.model:
    source["openmodeldb_id"] = FLAGS.model
  meta = metadata_lib.build(
      FLAGS.format, config.model.name, config.model.to_dict(), config.scale, program.multiple,
      FLAGS.dtype, source,
      " ".join(shlex.quote(a) for a in ["python", "-m", "jaxsr.export"] + sys.argv[1:]))
  meta_path, _ = exporter.export(program, FLAGS.format, output, meta)
  logging.info("Wrote %s (%s, %s x%d, input multiple %d) and %s", output, FLAGS.format,
               config.model.name, config.scale, program.multiple, meta_path)
  if FLAGS.verify:
    worst = exporter.verify(program, output)
    limit = exporter.tolerance(FLAGS.dtype)
    logging.info("Verified in its runtime: max |export - jaxsr| = %.2e (limit %.0e)", worst,
                 limit)
    if not worst <= limit:
      cli.fail(f"the export differs from jaxsr by {worst:.3e} > {limit:.0e}.")
  print(output)


if __name__ == "__main__":
  cli.run(main)
