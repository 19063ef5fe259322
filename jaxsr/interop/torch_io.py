"""Reads and writes PyTorch `.pth` files (`torch.save` output) without importing torch.

A `torch.save` file (torch >= 1.6, zip format) is a zip archive `<archive>/...` holding
`data.pkl` (a protocol-2 pickle of the saved object), one raw little- or big-endian buffer per
storage in `data/<key>`, and `byteorder`, `version` records. Tensors in the pickle are calls of
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`, storages persistent ids
`('storage', torch.FloatStorage, key, 'cpu', numel)`. Older files (torch < 1.6, e.g.
torchvision's 2017 `vgg19-dcbb9e9d.pth`) are the legacy format: pickles in sequence (magic
number, protocol, system info, the object, the storage keys) followed by the raw storages.

Loading uses an unpickler that resolves only the few globals torch state dicts use and rejects
all others with `pickle.UnpicklingError`: loading never runs code from the file. Tensors become
C-contiguous numpy arrays of the stored dtype (bfloat16 and float8 as `ml_dtypes` types).
"""

import collections
import io
import os
import pickle
import struct
import sys
import zipfile
from typing import Any, BinaryIO, Callable, Dict, Mapping, Optional, Union

import ml_dtypes
import numpy as np

PathOrFile = Union[str, os.PathLike, BinaryIO]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_LEGACY_PROTOCOL = 1001
_ALIGNMENT = 64  # torch aligns each zip record's data to 64 bytes.
_ARCHIVE = "archive"  # Record prefix written by `save_state_dict` (torch uses the file stem).

# Legacy storage class name -> element dtype (torch `_dtype_to_storage_type_map`).
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_, "ComplexDoubleStorage": np.complex128,
    "ComplexFloatStorage": np.complex64,
}
# `torch.<name>` dtype objects (e.g. `_rebuild_tensor_v3`'s, for dtypes without a storage
# class) -> numpy dtype; numpy/ml_dtypes names equal torch's ('float32', 'float8_e4m3fn').
_TORCH_DTYPES = {np.dtype(dt).name: dt for dt in [
    *_STORAGE_DTYPES.values(), np.uint16, np.uint32, np.uint64, ml_dtypes.float8_e4m3fn,
    ml_dtypes.float8_e5m2, ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2fnuz]}


# ---------------------------------------------------------------------------------------------
# Loading.


class _Frozen:
  """Base of the objects the unpickler hands out for globals.

  Pickle's BUILD opcode calls `__setstate__` on whatever object is on the stack: refusing it
  keeps a file from altering these shared objects (and so later loads).
  """
  __slots__ = ()

  def __setstate__(self, state):
    raise pickle.UnpicklingError(f"Refusing to set the state of {self!r}")


class _StorageType(_Frozen):
  """What the unpickler returns for `torch.FloatStorage` etc.: the storage's element dtype."""
  __slots__ = ("dtype", "untyped")

  def __init__(self, dtype, untyped: bool = False):
    self.dtype, self.untyped = np.dtype(dtype), untyped


class _DType(_Frozen):
  """What the unpickler returns for a `torch.float32` etc. dtype object."""
  __slots__ = ("dtype",)

  def __init__(self, dtype):
    self.dtype = np.dtype(dtype)


class _TensorType(_Frozen):
  """What the unpickler returns for `torch.Tensor` / `torch.nn.parameter.Parameter`."""
  __slots__ = ()


class _Rebuild(_Frozen):
  """What the unpickler returns for a torch rebuild function: calls `fn`."""
  __slots__ = ("fn",)

  def __init__(self, fn: Callable[..., Any]):
    self.fn = fn

  def __call__(self, *args):
    return self.fn(*args)


class _Tensor:
  """A tensor rebuilt from the pickle: a strided view of its storage, copied by `_materialize`.

  Legacy files store the data after the pickle, so views are taken first and read at the end.
  """

  def __init__(self, view: np.ndarray, metadata: Optional[Mapping[str, bool]] = None):
    self.view, self.metadata = view, dict(metadata or {})


def _strided_view(storage: Any, offset: int, size, stride) -> np.ndarray:
  """`storage[offset:]` viewed with shape `size` and element strides `stride`, bounds-checked."""
  if not isinstance(storage, np.ndarray) or storage.ndim != 1:
    raise pickle.UnpicklingError(f"Tensor storage must come from a persistent id, got {storage!r}")
  size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
  offset = int(offset)
  if len(size) != len(stride) or min(size + stride + (offset,), default=0) < 0:
    raise pickle.UnpicklingError(f"Bad tensor geometry: size {size}, stride {stride}, "
                                 f"offset {offset}")
  if 0 not in size:
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
      raise pickle.UnpicklingError(f"Tensor (size {size}, stride {stride}, offset {offset}) "
                                   f"reads past its storage of {storage.size} elements")
  itemsize = storage.dtype.itemsize
  return np.lib.stride_tricks.as_strided(
      storage[min(offset, storage.size):], shape=size, strides=[s * itemsize for s in stride],
      writeable=False)


def _rebuild_tensor(storage, storage_offset, size, stride) -> _Tensor:
  """torch._utils._rebuild_tensor (torch <= 0.3 files)."""
  return _Tensor(_strided_view(storage, storage_offset, size, stride))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       metadata=None) -> _Tensor:
  """torch._utils._rebuild_tensor_v2: the usual tensor record (storage typed by its class)."""
  del requires_grad, backward_hooks
  return _Tensor(_strided_view(storage, storage_offset, size, stride), metadata)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None) -> _Tensor:
  """torch._utils._rebuild_tensor_v3: a byte storage (`UntypedStorage`) and a torch dtype."""
  del requires_grad, backward_hooks
  if not isinstance(dtype, _DType) or not isinstance(storage, np.ndarray):
    raise pickle.UnpicklingError(f"Bad _rebuild_tensor_v3 arguments: {storage!r}, {dtype!r}")
  dtype = dtype.dtype
  if storage.dtype != np.uint8 or storage.size % dtype.itemsize:
    raise pickle.UnpicklingError(f"Storage of {storage.size} {storage.dtype} does not hold "
                                 f"whole {dtype} elements")
  return _Tensor(_strided_view(storage.view(dtype), storage_offset, size, stride), metadata)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None) -> _Tensor:
  """torch._utils._rebuild_parameter(_with_state): a Parameter is its data."""
  del requires_grad, backward_hooks, state
  if not isinstance(data, _Tensor):
    raise pickle.UnpicklingError(f"Parameter data must be a tensor, got {data!r}")
  return data


def _rebuild_from_type_v2(func, new_type, args, state) -> _Tensor:
  """torch._tensor._rebuild_from_type_v2: a Tensor/Parameter with Python attributes (dropped)."""
  del state
  if (not isinstance(func, _Rebuild) or func.fn is _rebuild_from_type_v2
      or not isinstance(new_type, _TensorType)):
    raise pickle.UnpicklingError(f"Unsupported tensor subclass rebuild: {func!r}, {new_type!r}")
  return func(*args)


def _allowed_globals() -> Dict[str, Any]:
  """'module.name' -> object, for every global a state-dict pickle may reference."""
  allowed = {
      "collections.OrderedDict": collections.OrderedDict,
      "torch._utils._rebuild_tensor": _Rebuild(_rebuild_tensor),
      "torch._utils._rebuild_tensor_v2": _Rebuild(_rebuild_tensor_v2),
      "torch._utils._rebuild_tensor_v3": _Rebuild(_rebuild_tensor_v3),
      "torch._utils._rebuild_parameter": _Rebuild(_rebuild_parameter),
      "torch._utils._rebuild_parameter_with_state": _Rebuild(_rebuild_parameter),
      "torch._tensor._rebuild_from_type_v2": _Rebuild(_rebuild_from_type_v2),
      "torch.Tensor": _TensorType(),
      "torch.nn.parameter.Parameter": _TensorType(),
      "torch.storage.UntypedStorage": _StorageType(np.uint8, untyped=True),
      "torch.UntypedStorage": _StorageType(np.uint8, untyped=True),
      "torch.Size": tuple,
  }
  allowed.update({f"torch.{name}": _StorageType(dt) for name, dt in _STORAGE_DTYPES.items()})
  allowed.update({f"torch.{name}": _DType(dt) for name, dt in _TORCH_DTYPES.items()})
  return allowed


_ALLOWED_GLOBALS = _allowed_globals()


class UnsafePickleError(pickle.UnpicklingError):
  """The file's pickle references a global that a torch state dict does not use."""


def _ascii(value: Union[str, bytes]) -> str:
  return value.decode("ascii") if isinstance(value, bytes) else str(value)


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickler resolving only `_ALLOWED_GLOBALS`; storages come from `load_storage`.

  `load_storage(key, storage_type, numel, view_metadata)` returns the storage as a 1-D numpy array.
  """

  def __init__(self, file: BinaryIO, load_storage: Optional[Callable[..., np.ndarray]] = None):
    super().__init__(file)
    self._load_storage = load_storage

  def find_class(self, module: str, name: str) -> Any:
    full = f"{module}.{name}"
    if full not in _ALLOWED_GLOBALS:
      raise UnsafePickleError(
          f"Refusing to load global '{full}': this is not a plain torch state dict (only "
          "tensors, storages, dtypes and collections.OrderedDict are allowed).")
    return _ALLOWED_GLOBALS[full]

  def persistent_load(self, pid: Any) -> np.ndarray:
    if (self._load_storage is None or not isinstance(pid, tuple) or len(pid) not in (5, 6)
        or _ascii(pid[0]) != "storage" or not isinstance(pid[1], _StorageType)):
      raise pickle.UnpicklingError(f"Unsupported persistent id {pid!r}")
    _, storage_type, key, _, numel = pid[:5]
    view_metadata = pid[5] if len(pid) == 6 else None
    return self._load_storage(_ascii(key), storage_type, int(numel), view_metadata)


def _from_bytes(raw: bytes, dtype: np.dtype, count: int, byteorder: str) -> np.ndarray:
  """`count` elements of `dtype` stored with `byteorder` ('little'/'big') -> native 1-D array."""
  if len(raw) < count * dtype.itemsize:
    raise ValueError(f"Storage has {len(raw)} bytes, needs {count} x {dtype}")
  if byteorder == sys.byteorder or dtype.itemsize == 1:
    return np.frombuffer(raw, dtype, count)
  parts = 2 if dtype.kind == "c" else 1  # Complex numbers swap each component.
  swapped = np.frombuffer(raw, f"u{dtype.itemsize // parts}", count * parts).byteswap()
  return swapped.view(dtype)


def _materialize(obj: Any) -> Any:
  """Replaces `_Tensor`s and storages by contiguous array copies, OrderedDicts by dicts."""
  if isinstance(obj, dict):
    return {k: _materialize(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return type(obj)(_materialize(v) for v in obj)
  if isinstance(obj, np.ndarray):
    return np.array(obj, order="C")
  if isinstance(obj, _DType):
    return obj.dtype
  if isinstance(obj, _Tensor):
    array = np.array(obj.view, order="C")
    if obj.metadata.get("conj"):
      array = np.conj(array)
    if obj.metadata.get("neg"):
      array = np.negative(array)
    return array
  return obj


def _load_zip(file: BinaryIO) -> Any:
  with zipfile.ZipFile(file) as archive:
    names = set(archive.namelist())
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
      raise ValueError(f"Not a torch.save zip archive (no single <archive>/data.pkl): "
                       f"{sorted(names)[:10]}")
    prefix = pickles[0][:-len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
      byteorder = archive.read(prefix + "byteorder").decode("ascii").strip()
      if byteorder not in ("little", "big"):
        raise ValueError(f"Unknown byteorder record {byteorder!r}")
    raw_storages: Dict[str, bytes] = {}

    def load_storage(key, storage_type, numel, view_metadata):
      del view_metadata  # Legacy format only.
      if storage_type.untyped and byteorder != sys.byteorder:
        raise ValueError("Untyped storages in a foreign-byte-order file are not supported")
      if key not in raw_storages:
        name = f"{prefix}data/{key}"
        if name not in names:
          raise ValueError(f"Storage record {name} is missing")
        raw_storages[key] = archive.read(name)
      return _from_bytes(raw_storages[key], storage_type.dtype, numel, byteorder)

    with archive.open(pickles[0]) as f:
      obj = _RestrictedUnpickler(io.BytesIO(f.read()), load_storage).load()
    return _materialize(obj)


def _load_legacy(file: BinaryIO) -> Any:
  """torch < 1.6 format: pickled magic, protocol, sys info, object, storage keys; raw data."""
  try:
    magic = _RestrictedUnpickler(file).load()
  except UnsafePickleError:
    raise
  except Exception as e:  # Not a pickle at all (e.g. torch's early tar format).
    raise ValueError("Not a readable torch.save file; re-save it with torch>=1.6 "
                     "(zip format): torch.save(torch.load(path), path)") from e
  if magic != _LEGACY_MAGIC:
    raise ValueError("Not a torch.save file (bad magic number); re-save it with torch>=1.6 "
                     "(zip format)")
  protocol = _RestrictedUnpickler(file).load()
  if protocol != _LEGACY_PROTOCOL:
    raise ValueError(f"Unsupported legacy torch file protocol {protocol}")
  _RestrictedUnpickler(file).load()  # sys info: little_endian, type sizes (not needed).
  roots: Dict[str, np.ndarray] = {}

  def load_storage(key, storage_type, numel, view_metadata):
    if key not in roots:
      roots[key] = np.empty(numel, storage_type.dtype)
    root = roots[key]
    if root.dtype != storage_type.dtype or root.size != numel:
      raise ValueError(f"Storage {key} used as {numel} x {storage_type.dtype} and "
                       f"{root.size} x {root.dtype}")
    if view_metadata is None:
      return root
    _, offset, size = view_metadata
    offset, size = int(offset), int(size)
    if offset < 0 or size < 0 or offset + size > numel:
      raise pickle.UnpicklingError(f"Storage view {view_metadata} outside {numel} elements")
    return root[offset:offset + size]

  obj = _RestrictedUnpickler(file, load_storage).load()
  keys = [_ascii(k) for k in _RestrictedUnpickler(file).load()]
  if set(keys) != set(roots):
    raise ValueError(f"Storage keys {sorted(keys)} do not match the pickle's {sorted(roots)}")
  for key in keys:  # Raw storages: int64 element count, then the little-endian data.
    root = roots[key]
    (numel,) = struct.unpack("<q", file.read(8))
    if numel != root.size:
      raise ValueError(f"Storage {key} holds {numel} elements, expected {root.size}")
    root[...] = _from_bytes(file.read(numel * root.itemsize), root.dtype, numel, "little")
  return _materialize(obj)


def load_state_dict(path: PathOrFile) -> Any:
  """Reads a `torch.save` file without torch, executing nothing from it.

  Args:
    path: a `.pth` file path or a binary file object (seekable) holding one.

  Returns:
    The saved object with nested dicts/lists/tuples as stored (OrderedDicts become dicts) and
    tensors as C-contiguous numpy arrays of the stored shape (conv weights `[out, in, kh, kw]`),
    dtype (bfloat16 and float8 as `ml_dtypes` dtypes) and values.

  Raises:
    UnsafePickleError: (a `pickle.UnpicklingError`) the pickle references a global other than
      torch's tensor rebuild functions, storage classes, dtypes or `collections.OrderedDict`
      (e.g. a whole pickled `nn.Module`, or a malicious file).
    ValueError: not a torch.save file (or torch's early tar format), or inconsistent records.
  """
  if not hasattr(path, "read"):
    with open(path, "rb") as f:
      return load_state_dict(f)
  start = path.tell()
  magic = path.read(4)
  path.seek(start)
  if magic == b"PK\x03\x04":
    return _load_zip(path)
  return _load_legacy(path)


# ---------------------------------------------------------------------------------------------
# Saving.


class _Global:
  """Stand-in that `_TorchPickler` writes as `GLOBAL module name` (torch need not exist)."""

  def __init__(self, module: str, name: str):
    self.module, self.name = module, name

  def __reduce_ex__(self, protocol):
    return self.name  # "Save as a global" -> `_TorchPickler.save_global`.

  def __call__(self, *args):  # Pickle's save_reduce wants a callable; never called here.
    raise TypeError(f"{self.module}.{self.name} is a stand-in for writing pickles")


_REBUILD_TENSOR_V2 = _Global("torch._utils", "_rebuild_tensor_v2")
_SAVE_STORAGE_TYPES = {np.dtype(dt): _Global("torch", name) for name, dt in
                       _STORAGE_DTYPES.items()}


class _SaveStorage:
  """A storage to write: pickled as a persistent id, its bytes go to `data/<key>`."""

  def __init__(self, key: str, array: np.ndarray):
    self.key, self.array = key, array


class _SaveTensor:
  """A contiguous numpy array pickled as torch's `_rebuild_tensor_v2(...)` call."""

  def __init__(self, storage: _SaveStorage):
    self.storage = storage

  def __reduce_ex__(self, protocol):
    shape = tuple(int(n) for n in self.storage.array.shape)
    stride, step = [], 1
    for n in reversed(shape):  # torch's contiguous strides (a size-0 dim counts as 1).
      stride.insert(0, step)
      step *= max(n, 1)
    return (_REBUILD_TENSOR_V2,
            (self.storage, 0, shape, tuple(stride), False, collections.OrderedDict()))


class _TorchPickler(pickle._Pickler):  # pylint: disable=protected-access
  """Pure-Python pickler (its `save_global` can be overridden) writing torch's records."""

  def persistent_id(self, obj: Any) -> Any:
    if isinstance(obj, _SaveStorage):
      return ("storage", _SAVE_STORAGE_TYPES[obj.array.dtype], obj.key, "cpu", obj.array.size)
    return None

  def save_global(self, obj: Any, name: Optional[str] = None) -> None:
    if not isinstance(obj, _Global):
      super().save_global(obj, name)
      return
    self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
    self.memoize(obj)


def _to_save_tree(obj: Any, storages: list) -> Any:
  """Copies the tree with each array leaf replaced by a `_SaveTensor` (appended to storages)."""
  if isinstance(obj, Mapping):
    return {k: _to_save_tree(v, storages) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return type(obj)(_to_save_tree(v, storages) for v in obj)
  if obj is None or isinstance(obj, (bool, int, float, str)):
    return obj
  if not (isinstance(obj, np.ndarray) or hasattr(obj, "__array__")):
    raise TypeError(f"Cannot save {type(obj).__name__} in a torch state dict")
  array = np.asarray(obj)
  if not array.dtype.isnative:
    array = array.astype(array.dtype.newbyteorder("="))
  if array.dtype not in _SAVE_STORAGE_TYPES:
    raise TypeError(f"No torch storage type for dtype {array.dtype}; supported: "
                    f"{sorted(str(d) for d in _SAVE_STORAGE_TYPES)}")
  storages.append(_SaveStorage(str(len(storages)), np.asarray(array, order="C")))
  return _SaveTensor(storages[-1])


def _write_record(zf: zipfile.ZipFile, file: BinaryIO, name: str,
                  data: Union[bytes, memoryview]) -> None:
  """Writes an uncompressed zip record whose data starts at a multiple of `_ALIGNMENT`."""
  info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
  info.compress_type = zipfile.ZIP_STORED
  info.file_size = len(data)
  zip64_extra = 20 if info.file_size * 1.05 > zipfile.ZIP64_LIMIT else 0  # As zipfile decides.
  header = 30 + len(name.encode("utf-8")) + 4 + zip64_extra  # 4: our extra field's header.
  pad = -(file.tell() + header) % _ALIGNMENT
  info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad  # torch's padding field.
  with zf.open(info, "w") as out:
    out.write(data)


def save_state_dict(path: Union[str, os.PathLike], tensors: Mapping[str, Any]) -> None:
  """Writes `tensors` as torch >= 1.6 `torch.save` does; `torch.load(weights_only=True)` reads it.

  Args:
    path: output `.pth` path.
    tensors: name -> numpy (or jax) array; values may also be nested dicts/lists/tuples (e.g.
      BasicSR's {'params': {...}}) and None/bool/int/float/str. Arrays of any layout and shape
      are written C-contiguous with dtype float64/32/16, bfloat16, int64/32/16/8, uint8, bool or
      complex64/128 (others raise TypeError). Every array gets its own storage.
  """
  storages: list = []
  tree = _to_save_tree(tensors, storages)
  buffer = io.BytesIO()
  _TorchPickler(buffer, protocol=2).dump(tree)
  with open(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
    records = [("data.pkl", buffer.getvalue()), (".format_version", b"1"),
               (".storage_alignment", str(_ALIGNMENT).encode()),
               ("byteorder", sys.byteorder.encode())]
    records += [(f"data/{s.key}", memoryview(s.array.reshape(-1).view(np.uint8)))
                for s in storages]
    records.append(("version", b"3\n"))
    for name, data in records:
      _write_record(zf, f, f"{_ARCHIVE}/{name}", data)


# ---------------------------------------------------------------------------------------------
# State-dict selection.


def select_params(obj: Any, key: str = "") -> Dict[str, np.ndarray]:
  """The flat state dict (name -> array) inside a loaded checkpoint, BasicSR's convention.

  Args:
    obj: result of `load_state_dict`.
    key: entry to take, e.g. 'params' or 'params_ema'. Empty: 'params_ema' if present, else
      'params', else `obj` itself.

  Returns:
    A new dict name -> numpy array (e.g. 'conv_first.weight' -> `[out, in, kh, kw]`).

  Raises:
    KeyError: `key` is not in `obj` (the message lists the available keys).
    ValueError: the selected entry is not a flat mapping of arrays.
  """
  if not isinstance(obj, Mapping):
    raise ValueError(f"Expected a dict of tensors, got {type(obj).__name__}")
  if key:
    if key not in obj:
      raise KeyError(f"No '{key}' in the checkpoint; available keys: {sorted(map(str, obj))}")
    params = obj[key]
  else:
    params = next((obj[k] for k in ("params_ema", "params") if k in obj), obj)
  if not isinstance(params, Mapping) or not all(isinstance(v, np.ndarray)
                                                for v in params.values()):
    raise ValueError(f"Not a flat state dict (name -> array); keys: "
                     f"{sorted(map(str, params)) if isinstance(params, Mapping) else params}")
  return dict(params)
