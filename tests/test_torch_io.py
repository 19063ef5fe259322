"""Reading and writing torch.save files without torch: real-torch files, round trips, safety."""

import io
import os
import pickle
import pickletools
import struct
import zipfile

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from jaxsr.interop import torch_io


def _write_archive(path, pkl: bytes, storages=(), byteorder=None):
  """A torch-style zip: `archive/data.pkl`, `archive/data/<key>`, optional `byteorder`."""
  with zipfile.ZipFile(path, "w") as zf:
    zf.writestr("archive/data.pkl", pkl)
    if byteorder is not None:
      zf.writestr("archive/byteorder", byteorder)
    for key, data in dict(storages).items():
      zf.writestr(f"archive/data/{key}", data)
    zf.writestr("archive/version", "3\n")
  return path


def _tensor_pickle(numel, offset, size, stride, v1=False):
  """Protocol-0 opcodes of `_rebuild_tensor_v2(('storage', torch.FloatStorage, '0', 'cpu', numel),
  offset, size, stride, False, {})` as torch writes (hand-made: any geometry); `v1`: torch 0.3's
  `_rebuild_tensor(storage, offset, size, stride)`."""
  ints = lambda xs: b"(" + b"".join(b"I%d\n" % x for x in xs) + b"t"
  return (b"ctorch._utils\n_rebuild_tensor" + (b"" if v1 else b"_v2") + b"\n(" +
          b"(Vstorage\nctorch\nFloatStorage\nV0\nVcpu\nI%d\ntQ" % numel +
          b"I%d\n" % offset + ints(size) + ints(stride) + (b"" if v1 else b"I00\n(d") + b"tR.")


class _Evil:
  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return (os.system, (f"touch {self.path}",))


@pytest.mark.exact("loading copies the stored values")
@pytest.mark.parametrize("name", ["torch_small.pth", "torch_small_legacy.pth"])
def test_loads_files_written_by_real_torch(data_dir, name):
  loaded = torch_io.load_state_dict(data_dir / name)
  expected = np.load(data_dir / "torch_small_expected.npz")
  assert set(loaded) == {"params", "iter"} and loaded["iter"] == 7
  params = loaded["params"]
  assert type(params) is dict  # OrderedDict (with BUILD of `_metadata`) -> dict.
  assert sorted(f"params/{k}" for k in params) == sorted(expected.files)
  for key in expected.files:
    got, want = params[key.split("/", 1)[1]], expected[key]
    assert got.shape == want.shape and got.flags.c_contiguous and got.flags.owndata, key
    assert got.dtype == (ml_dtypes.bfloat16 if key == "params/bf16" else want.dtype), key
    np.testing.assert_array_equal(got.astype(want.dtype), want, err_msg=key)
  # The transposed view and the offset slice share one storage: check the geometry too.
  np.testing.assert_array_equal(params["transposed"].T[1:, 1:3], params["window"])
  assert params["1.num_batches_tracked"] == 123456789012


@pytest.mark.parametrize("v1", [False, True])
def test_strides_and_offset_honoured(tmp_path, v1):
  storage = np.arange(12, dtype="<f4")
  path = _write_archive(tmp_path / "a.pth", _tensor_pickle(12, 4, (2, 3), (1, 3), v1),
                        {"0": storage.tobytes()})
  # Element [i, j] is storage[4 + i + 3 j]; the last one read is storage[11].
  np.testing.assert_array_equal(torch_io.load_state_dict(path), [[4, 7, 10], [5, 8, 11]])
  path = _write_archive(tmp_path / "b.pth", _tensor_pickle(12, 11, (), ()),
                        {"0": storage.tobytes()})
  assert torch_io.load_state_dict(path).shape == () and torch_io.load_state_dict(path) == 11


@pytest.mark.parametrize("offset,size,stride", [(10, (2, 2), (1, 1)), (0, (2, 7), (6, 1)),
                                                (0, (3,), (-1,))])
def test_geometry_outside_storage_rejected(tmp_path, offset, size, stride):
  path = _write_archive(tmp_path / "a.pth", _tensor_pickle(12, offset, size, stride),
                        {"0": np.zeros(12, "<f4").tobytes()})
  with pytest.raises(pickle.UnpicklingError, match="past its storage|Bad tensor geometry"):
    torch_io.load_state_dict(path)


@pytest.mark.exact("loading copies the stored values")
def test_big_endian_archive(tmp_path):
  values = np.array([1.5, -2.0, 3.25], np.float32)
  pkl = _tensor_pickle(3, 0, (3,), (1,))
  big = _write_archive(tmp_path / "big.pth", pkl, {"0": values.astype(">f4").tobytes()}, "big")
  little = _write_archive(tmp_path / "little.pth", pkl, {"0": values.astype("<f4").tobytes()})
  for path in (big, little):  # byteorder absent: little.
    got = torch_io.load_state_dict(path)
    assert got.dtype == np.float32 and got.dtype.isnative
    np.testing.assert_array_equal(got, values)


@pytest.mark.exact("a save / load round trip copies the values")
def test_save_load_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  base = rng.standard_normal((4, 6)).astype(np.float32)
  tree = {
      "params": {
          "transposed": base.T,  # Non-contiguous inputs.
          "strided": base[1:, ::-2],
          "half": rng.standard_normal(5).astype(np.float16),
          "bf16": np.array([1.5, -2.0, 3e38], ml_dtypes.bfloat16),
          "f64": np.array([np.pi]),
          "num_batches_tracked": np.array(2**40, np.int64),
          "int8": np.array([-128, 127], np.int8),
          "mask": np.array([[True], [False]]),
          "empty": np.zeros((2, 0, 3), np.float32),
          "big_endian": np.arange(3, dtype=">i4"),
          "jax": jnp.arange(4, dtype=jnp.int32),
      },
      "iter": 3, "names": ["a", (1.5, None)],
  }
  path = tmp_path / "rt.pth"
  torch_io.save_state_dict(path, tree)
  loaded = torch_io.load_state_dict(path)
  assert loaded["iter"] == 3 and loaded["names"] == ["a", (1.5, None)]
  assert set(loaded["params"]) == set(tree["params"])
  for name, want in tree["params"].items():
    want, got = np.asarray(want), loaded["params"][name]
    assert got.shape == want.shape and got.dtype == want.dtype.newbyteorder("="), name
    np.testing.assert_array_equal(got, want, err_msg=name)


def test_saved_file_has_torch_layout(tmp_path):
  path = tmp_path / "w.pth"
  torch_io.save_state_dict(path, {"params": {"w": np.ones((2, 3), np.float32),
                                             "n": np.zeros((), np.int64)}})
  with zipfile.ZipFile(path) as zf:
    infos = {i.filename: i for i in zf.infolist()}
    assert infos["archive/data.pkl"].header_offset == 0  # torch reads the prefix off record 0.
    assert zf.read("archive/version") == b"3\n"
    assert zf.read("archive/byteorder") in (b"little", b"big")
    assert len(zf.read("archive/data/0")) == 6 * 4 and len(zf.read("archive/data/1")) == 8
    ops = list(pickletools.genops(zf.read("archive/data.pkl")))
  assert ops[0][0].name == "PROTO" and ops[0][1] == 2
  globals_ = {arg for op, arg, _ in ops if op.name == "GLOBAL"}
  assert globals_ == {"torch._utils _rebuild_tensor_v2", "torch FloatStorage",
                      "torch LongStorage", "collections OrderedDict"}
  assert [op.name for op, _, _ in ops].count("BINPERSID") == 2  # One storage per tensor.
  raw = path.read_bytes()
  for info in infos.values():  # torch aligns every record's data to 64 bytes.
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0, info.filename


def test_save_rejects_unsupported_leaves(tmp_path):
  with pytest.raises(TypeError, match="uint32"):
    torch_io.save_state_dict(tmp_path / "a.pth", {"x": np.zeros(2, np.uint32)})
  with pytest.raises(TypeError, match="object"):
    torch_io.save_state_dict(tmp_path / "a.pth", {"x": object()})


def test_malicious_pickle_rejected_without_running(tmp_path):
  marker = tmp_path / "pwned"
  evil = pickle.dumps({"w": _Evil(marker)}, protocol=2)
  assert b"system" in evil
  with pytest.raises(pickle.UnpicklingError, match="Refusing to load global 'posix.system'"):
    torch_io.load_state_dict(_write_archive(tmp_path / "evil.pth", evil))
  # The legacy (non-zip) format: a valid header, then the payload.
  legacy = tmp_path / "evil_legacy.pth"
  with open(legacy, "wb") as f:
    for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
      pickle.dump(header, f, protocol=2)
    f.write(evil)
  with pytest.raises(torch_io.UnsafePickleError, match="posix.system"):
    torch_io.load_state_dict(legacy)
  assert not marker.exists()
  pickle.loads(evil)  # The same payload does run when unpickled normally.
  assert marker.exists()


def test_unknown_persistent_id_and_non_torch_files_rejected(tmp_path):
  pkl = b"\x80\x02(Vmodule\nVsrc\ntQ."
  with pytest.raises(pickle.UnpicklingError, match="persistent id"):
    torch_io.load_state_dict(_write_archive(tmp_path / "a.pth", pkl))
  with pytest.raises(ValueError, match="re-save it with torch>=1.6"):
    torch_io.load_state_dict(io.BytesIO(b"\x00not a pickle" * 4))
  with pytest.raises(ValueError, match="bad magic"):
    torch_io.load_state_dict(io.BytesIO(pickle.dumps(42)))


def test_select_params():
  w, v = np.zeros(1), np.ones(2)
  both = {"params": {"a": w}, "params_ema": {"a": v}}
  assert torch_io.select_params(both)["a"] is v
  assert torch_io.select_params(both, "params")["a"] is w
  assert torch_io.select_params({"params": {"a": w}, "iter": 3}) == {"a": w}
  bare = {"conv.weight": w}
  assert torch_io.select_params(bare) == bare and torch_io.select_params(bare) is not bare
  with pytest.raises(KeyError, match=r"'ema'.*available keys: \['params', 'params_ema'\]"):
    torch_io.select_params(both, "ema")
  with pytest.raises(ValueError, match="Not a flat state dict"):
    torch_io.select_params({"state": {"a": w}, "iter": 3})
  with pytest.raises(ValueError, match="Not a flat state dict"):
    torch_io.select_params({"params": {"a": {"b": w}}})
