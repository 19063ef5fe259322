"""Runs an exported model in its own runtime: ONNX Runtime, TF (SavedModel), the TFLite
interpreter, or `jax.export.deserialize` (StableHLO); none of them uses jaxsr's model code.

`load(path)` -> `ExportedModel`, whose `run` maps float32 `[B, H, W, 3]` in [0, 1] to float32
`[B, H*s, W*s, 3]` (not clipped), H and W multiples of `multiple`. Scale and multiple come
from the export's metadata (`metadata.py`); without it (a file made elsewhere) the scale is
measured on a 32x32 input and the multiple taken as 1.
"""

import dataclasses
import os
from typing import Any, Callable, Dict, Optional

import numpy as np

from jaxsr.export import metadata as metadata_lib

FORMATS = ("onnx", "savedmodel", "tflite", "stablehlo")
EXTENSIONS = {".onnx": "onnx", ".tflite": "tflite", ".stablehlo": "stablehlo"}
_PROBE = 32


@dataclasses.dataclass
class ExportedModel:
  """A loaded export: `run` (see the module docstring), its format, scale and multiple."""
  run: Callable[[np.ndarray], np.ndarray]
  format: str
  scale: int
  multiple: int
  metadata: Optional[Dict[str, Any]]


def detect_format(path: str) -> str:
  """'savedmodel' for a directory with saved_model.pb, else by extension; ValueError if
  neither."""
  if os.path.isdir(path):
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
      return "savedmodel"
    raise ValueError(f"{path} is a directory without saved_model.pb: not a SavedModel.")
  ext = os.path.splitext(path)[1].lower()
  if ext not in EXTENSIONS:
    raise ValueError(f"Cannot tell the format of {path}: expected a SavedModel directory or "
                     f"a file ending in {', '.join(EXTENSIONS)}.")
  return EXTENSIONS[ext]


def _missing(package: str, extra: str) -> ImportError:
  return ImportError(f"Running this export needs the '{package}' package: "
                     f"pip install 'jaxsr[{extra}]'")


def _onnx_runner(path: str, threads: int) -> Callable:
  try:
    import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise _missing("onnxruntime", "onnx") from None
  options = ort.SessionOptions()
  if threads:
    options.intra_op_num_threads = threads
  providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
               if p in ort.get_available_providers()]
  session = ort.InferenceSession(path, options, providers=providers)
  name = session.get_inputs()[0].name
  return lambda x: session.run(None, {name: x})[0]


def _onnx_metadata(path: str) -> Dict[str, str]:
  try:
    import onnx  # pylint: disable=g-import-not-at-top
  except ImportError:
    return {}
  model = onnx.load(path, load_external_data=False)
  return {p.key: p.value for p in model.metadata_props}


def _savedmodel_runner(path: str, threads: int) -> Callable:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  del threads  # TF's thread pools are process-wide.
  serve = tf.saved_model.load(path).signatures["serving_default"]
  return lambda x: serve(input=tf.constant(x))["output"].numpy()


def _tflite_interpreter(path: str, threads: int):
  try:  # LiteRT, TFLite's successor, when installed; else TF's own interpreter.
    from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
    return litert.Interpreter(model_path=path, num_threads=threads or None)
  except ImportError:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.lite.Interpreter(model_path=path, num_threads=threads or None)


def _tflite_runner(path: str, threads: int) -> Callable:
  interpreter = _tflite_interpreter(path, threads)
  runner = interpreter.get_signature_runner("serving_default")
  return lambda x: runner(input=x)["output"]


def _stablehlo_runner(path: str, threads: int) -> Callable:
  from jax import export as jax_export  # pylint: disable=g-import-not-at-top
  del threads
  with open(path, "rb") as f:
    exported = jax_export.deserialize(bytearray(f.read()))
  return lambda x: np.asarray(exported.call(x))


_RUNNERS = {"onnx": _onnx_runner, "savedmodel": _savedmodel_runner, "tflite": _tflite_runner,
            "stablehlo": _stablehlo_runner}


def load(path: str, threads: int = 0) -> ExportedModel:
  """Loads an export for inference (see the module docstring).

  Args:
    path: a `.onnx`, `.tflite` or `.stablehlo` file or a SavedModel directory.
    threads: intra-op threads for ONNX Runtime / TFLite; 0 for the runtime's default.

  Raises:
    ValueError: unknown format or missing path; ImportError: the runtime is not installed.
  """
  if not os.path.exists(path):
    raise ValueError(f"{path} does not exist.")
  fmt = detect_format(path)
  run = _RUNNERS[fmt](path, threads)
  meta = metadata_lib.read(path)
  if meta is None and fmt == "onnx":
    props = _onnx_metadata(path)
    meta = ({"scale": int(props["scale"]), "input_multiple": int(props["input_multiple"])}
            if "scale" in props and "input_multiple" in props else None)
  if meta is not None:
    scale, multiple = int(meta["scale"]), int(meta["input_multiple"])
  else:
    out = run(np.zeros((1, _PROBE, _PROBE, 3), np.float32))
    scale, multiple = out.shape[1] // _PROBE, 1
  return ExportedModel(run, fmt, scale, multiple, meta)
