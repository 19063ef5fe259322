"""Writes a generator in one export format with its metadata, and checks the export against
jaxsr (`python -m jaxsr.export` is the command line over this)."""

import os
from typing import Any, Dict, Optional, Sequence, Tuple

import jax
import ml_collections
import numpy as np

from jaxsr import builders
from jaxsr import inference
from jaxsr.export import metadata as metadata_lib
from jaxsr.export import program as program_lib
from jaxsr.export import runtimes

DTYPES = ("float32", "bfloat16", "float16")
# Computation dtypes each format can hold: ONNX's Conv has no bfloat16, and the TFLite
# converter legalizes only float32 programs (its float16 is a weight quantization).
FORMAT_DTYPES = {"stablehlo": DTYPES, "savedmodel": DTYPES, "onnx": ("float32", "float16"),
                 "tflite": ("float32",)}
# Verification: input sizes in units of `multiple` (odd, non-square, batch > 1).
VERIFY_SHAPES = ((2, 3, 5), (1, 7, 4))


class ExportError(ValueError):
  """An export that cannot be made as asked (the message says why and what to do)."""


def program_from_generator(config: ml_collections.ConfigDict, model: Any,
                           variables: Dict[str, Any]) -> program_lib.InferenceProgram:
  """The `InferenceProgram` of a loaded generator (`inference.load_generator`)."""
  if not builders.has_params(model, config):
    raise ExportError(f"model.name={config.model.name!r} has no trained parameters: nothing to "
                      "export (MATLAB bicubic depends on the image size; use "
                      "jaxsr.ops.imresize).")
  return program_lib.InferenceProgram(model, variables, inference.input_multiple(model))


def default_output(fmt: str, workdir: str) -> str:
  """`<workdir>/export/model.<ext>` (a directory for SavedModel)."""
  name = {"onnx": "model.onnx", "tflite": "model.tflite", "stablehlo": "model.stablehlo",
          "savedmodel": "savedmodel"}[fmt]
  return os.path.join(workdir, "export", name)


def _write_bytes(path: str, data: bytes) -> None:
  """Writes `data` to `path` through a temporary file (no partial file on failure)."""
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, path)


def _write_format(program: program_lib.InferenceProgram, fmt: str, output: str,
                  meta: Dict[str, Any]) -> Dict[str, Any]:
  """Writes the export; returns format-specific metadata keys."""
  if fmt in FORMAT_DTYPES and program.dtype not in FORMAT_DTYPES[fmt]:
    raise ExportError(f"--format={fmt} cannot compute in {program.dtype}: use --dtype="
                      f"{' or '.join(FORMAT_DTYPES[fmt])}.")
  if fmt == "stablehlo":
    from jaxsr.export import stablehlo_export  # pylint: disable=g-import-not-at-top
    _write_bytes(output, stablehlo_export.serialize(program))
    return {"platforms": list(stablehlo_export.PLATFORMS)}
  if fmt in ("savedmodel", "tflite"):
    from jaxsr.export import tf_export  # pylint: disable=g-import-not-at-top
    if fmt == "savedmodel":
      tf_export.save_savedmodel(program, output)
      return {"signatures": tf_export.SIGNATURES,
              "platforms": list(tf_export.SAVEDMODEL_PLATFORMS)}
    _write_bytes(output, tf_export.tflite_bytes(program))
    return {"signatures": tf_export.SIGNATURES}
  if fmt == "onnx":
    try:
      from jaxsr.export import onnx_export  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise ExportError("ONNX export needs the 'onnx' package: pip install 'jaxsr[onnx]'"
                        ) from None
    props = {"scale": program.scale, "input_multiple": program.multiple,
             "model": meta["model"]["name"]}
    _write_bytes(output, onnx_export.program_to_onnx(program, props).SerializeToString())
    return {"opset": onnx_export.OPSET}
  raise ExportError(f"Unknown format {fmt!r}; one of {runtimes.FORMATS}")


def export(program: program_lib.InferenceProgram, fmt: str, output: str,
           meta: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
  """Writes `program` as `fmt` to `output` and its metadata beside it.

  Args:
    program: what to export.
    fmt: one of `runtimes.FORMATS`.
    output: file path (a directory for 'savedmodel'); parent directories are created.
    meta: `metadata.build(...)` without the format-specific keys.

  Returns:
    (metadata path, the metadata written).
  """
  parent = os.path.dirname(os.path.abspath(output))
  os.makedirs(parent, exist_ok=True)
  meta = {**meta, **_write_format(program, fmt, output, meta)}
  return metadata_lib.write(output, meta), meta


def verify(program: program_lib.InferenceProgram, output: str,
           shapes: Sequence[Tuple[int, int, int]] = VERIFY_SHAPES, seed: int = 0
           ) -> float:
  """Max |export - jaxsr| over random inputs of `shapes` (batch, height / multiple,
  width / multiple), the export run in its own runtime (`runtimes.load`)."""
  loaded = runtimes.load(output)
  apply = jax.jit(program.float_fn())
  rng = np.random.default_rng(seed)
  worst = 0.0
  for batch, h, w in shapes:
    x = rng.random((batch, h * program.multiple, w * program.multiple, 3), np.float32)
    expected = np.asarray(apply(x), np.float32)
    got = np.asarray(loaded.run(x), np.float32)
    if got.shape != expected.shape:
      raise ExportError(f"The export's output has shape {got.shape}, jaxsr's {expected.shape}.")
    worst = max(worst, float(np.max(np.abs(got - expected))))
  return worst


def tolerance(dtype: Optional[str]) -> float:
  """Verification tolerance: 1e-4 for float32, 5e-2 for 16-bit computation."""
  return 1e-4 if dtype in (None, "float32") else 5e-2
