"""Reads and writes `.safetensors` files (the Hugging Face format many community models ship
in) with numpy alone: an 8-byte little-endian header length, a JSON header
{name: {dtype, shape, data_offsets: [begin, end]}, '__metadata__': {...}}, then the raw
little-endian tensor bytes. Nothing in the file is executed."""

import json
import os
import struct
from typing import Mapping, Union

import ml_dtypes
import numpy as np

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
           "BF16": ml_dtypes.bfloat16, "F8_E4M3": ml_dtypes.float8_e4m3fn,
           "F8_E5M2": ml_dtypes.float8_e5m2, "I64": np.int64, "I32": np.int32,
           "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 2**20


def is_safetensors(path: Union[str, os.PathLike]) -> bool:
  return os.fspath(path).endswith(".safetensors")


def load(path: Union[str, os.PathLike]) -> dict[str, np.ndarray]:
  """name -> C-contiguous numpy array (stored dtype; bfloat16 / float8 as ml_dtypes types).

  Raises:
    ValueError: not a safetensors file (bad header, unknown dtype, offsets outside the data).
  """
  with open(path, "rb") as f:
    raw = f.read()
  if len(raw) < 8:
    raise ValueError(f"{path}: not a .safetensors file (shorter than its header length)")
  (size,) = struct.unpack("<Q", raw[:8])
  if size > min(_MAX_HEADER, len(raw) - 8):
    raise ValueError(f"{path}: not a .safetensors file (header of {size} bytes)")
  try:
    header = json.loads(raw[8:8 + size])
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ValueError(f"{path}: not a .safetensors file (header is not JSON: {e})") from None
  data = memoryview(raw)[8 + size:]
  tensors = {}
  for name, entry in header.items():
    if name == "__metadata__":
      continue
    try:
      dtype = np.dtype(_DTYPES[entry["dtype"]])
      begin, end = entry["data_offsets"]
      shape = tuple(entry["shape"])
    except (KeyError, TypeError, ValueError):
      raise ValueError(f"{path}: tensor {name!r} has an unreadable entry {entry!r}") from None
    if not 0 <= begin <= end <= len(data) or end - begin != dtype.itemsize * int(
        np.prod(shape, dtype=np.int64)):
      raise ValueError(f"{path}: tensor {name!r} ({entry['dtype']} {list(shape)}) does not fit "
                       f"bytes {begin}..{end} of {len(data)}")
    tensors[name] = np.frombuffer(data[begin:end], dtype.newbyteorder("<")).astype(
        dtype).reshape(shape)
  return tensors


def save(path: Union[str, os.PathLike], tensors: Mapping[str, np.ndarray]) -> None:
  """Writes `tensors` (name -> array) as a .safetensors file."""
  header, chunks, offset = {}, [], 0
  for name, value in tensors.items():
    value = np.ascontiguousarray(value)
    raw = value.astype(value.dtype.newbyteorder("<")).tobytes()
    header[name] = {"dtype": _NAMES[value.dtype], "shape": list(value.shape),
                    "data_offsets": [offset, offset + len(raw)]}
    chunks.append(raw)
    offset += len(raw)
  encoded = json.dumps(header).encode()
  encoded += b" " * (-len(encoded) % 8)
  with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks))
