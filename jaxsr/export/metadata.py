"""`metadata.json` of an export: what the file computes and where it came from.

Beside each export: `<file>.metadata.json` for a file (`model.onnx.metadata.json`), and
`metadata.json` inside a SavedModel directory. Keys:
  format, model (name and options), scale, input_multiple (height and width must be
  multiples of it), dtype (computation), input / output (layout, dtype, range, channels),
  signatures (SavedModel / TFLite), opset (ONNX), platforms (StableHLO), source (workdir,
  which, step, use_ema), jaxsr_version, jax_version, command, created (UTC ISO time).
"""

import datetime
import json
import os
from typing import Any, Dict, Optional

import jax

import jaxsr

FILE_SUFFIX = ".metadata.json"
DIR_NAME = "metadata.json"


def path_for(export_path: str) -> str:
  """Where the metadata of `export_path` lives (see the module docstring)."""
  if os.path.isdir(export_path):
    return os.path.join(export_path, DIR_NAME)
  return export_path + FILE_SUFFIX


def build(fmt: str, model_name: str, model_options: Dict[str, Any], scale: int, multiple: int,
          dtype: str, source: Dict[str, Any], command: str, **extra: Any) -> Dict[str, Any]:
  """The metadata dict; `extra` adds format-specific keys (opset, signatures, platforms)."""
  image = {"layout": "NHWC [batch, height, width, 3]", "channels": "RGB"}
  return {
      "format": fmt,
      "model": {"name": model_name, **model_options},
      "scale": int(scale),
      "input_multiple": int(multiple),
      "dtype": dtype,
      "input": {**image, "dtype": "float32", "range": [0.0, 1.0],
                "size": f"height, width: any multiples of {multiple}; batch: any"},
      "output": {**image, "dtype": "float32", "range": [0.0, 1.0],
                 "clipped": False, "size": f"[batch, {scale}*height, {scale}*width, 3]"},
      **extra,
      "source": source,
      "jaxsr_version": jaxsr.__version__,
      "jax_version": jax.__version__,
      "command": command,
      "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
  }


def write(export_path: str, metadata: Dict[str, Any]) -> str:
  """Writes the metadata beside `export_path`; returns its path."""
  path = path_for(export_path)
  with open(path, "w") as f:
    json.dump(metadata, f, indent=2, sort_keys=False)
    f.write("\n")
  return path


def read(export_path: str) -> Optional[Dict[str, Any]]:
  """The metadata beside `export_path`, or None if there is none."""
  path = path_for(export_path)
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)
