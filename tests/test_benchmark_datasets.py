"""Tests for jaxsr.datasets: benchmark tfds builders prepared offline from fake manual data."""

import io
import logging
import os
import re
import tarfile
import zipfile

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxsr import datasets
from jaxsr.data import input_pipeline

RNG = np.random.default_rng(0)


def _encoded(mode, height, width, image_format="PNG"):
  channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
  array = RNG.integers(0, 256, (height, width, channels), dtype=np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(buffer, image_format)
  return buffer.getvalue()


def _rgb(n=3):
  return [_encoded("RGB", 6 + k, 9 - k) for k in range(n)]


# Per set: {file name: bytes}, names out of order on purpose (layouts: the data_dir fixture).
_SET5 = dict(zip(["bird.png", "baby.png", "head.png"], _rgb()))
_SET14 = {"zebra.png": _rgb(1)[0], "baboon.png": _encoded("L", 7, 8), "ppt3.png": _rgb(1)[0]}
_B100 = dict(zip(["3096.png", "101085.png"], _rgb(2)))
_URBAN100 = dict(zip(["img_002.png", "img_001.png"], _rgb(2)))
_MANGA109 = {"YumeiroCooking.bmp": _encoded("RGB", 8, 6, "BMP"),
             "AisazuNihaIrarenai.PNG": _encoded("RGBA", 7, 7),
             "Hamlet.jpg": _encoded("RGB", 8, 8, "JPEG")}
_DIV2K = dict(zip(["0802.png", "0801.png"], _rgb(2)))
_LR = {"LR_bicubic/X2/x.png": _rgb(1)[0]}  # LR images must be ignored.


def _write(folder, files):
  for name, data in files.items():
    path = os.path.join(folder, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(data)


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
  def fail(*args, **kwargs):
    raise AssertionError(f"Download attempted: {args[1:]}")
  for method in ("download", "download_and_extract"):
    monkeypatch.setattr(tfds.download.DownloadManager, method, fail)
  tfds.disable_progress_bar()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """A tfds data_dir whose default manual dir holds every set in a different layout."""
  root = tmp_path_factory.mktemp("tfds")
  manual = root / "downloads" / "manual"
  _write(manual / "Set5", {"HR/" + k: v for k, v in _SET5.items()} | _LR)
  _write(manual / "set14", _SET14)  # Case-insensitive folder name.
  _write(manual / "benchmark" / "BSD100", {"HR/" + k: v for k, v in _B100.items()} | _LR)
  _write(manual / "Manga109" / "HR", _MANGA109 | {"notes.txt": b"x"})
  with tarfile.open(manual / "benchmark.tar", "w") as tar:  # As distributed by EDSR.
    for name, data in ({f"HR/{k}": v for k, v in _URBAN100.items()} | _LR).items():
      info = tarfile.TarInfo(f"benchmark/Urban100/{name}")
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  with zipfile.ZipFile(manual / "DIV2K_valid_HR.zip", "w") as zf:
    for name, data in _DIV2K.items():
      zf.writestr(f"DIV2K_valid_HR/{name}", data)
  return str(root)


def _expected(files):
  """{file name: bytes} -> [(name, bytes, RGB pixels, grayscale)] sorted by name."""
  expected = []
  for file, data in files.items():
    image = Image.open(io.BytesIO(data))
    pixels = np.asarray(image.convert("RGB"))
    if image.format == "JPEG":  # PIL's chroma upsampling differs; jaxsr reads JPEGs with TF.
      pixels = tf.io.decode_jpeg(data, channels=3).numpy()
    expected.append((os.path.splitext(file)[0], data, pixels, image.mode == "L"))
  return sorted(expected, key=lambda e: e[0])


def _check_prepared(name, data_dir, files, split="test"):
  """Eval loading (preparing from the manual dir if needed) decodes the files, in name order;
  the prepared set holds their bytes unchanged."""
  loaded = input_pipeline.load_eval_images(f"tfds:{name}", data_dir)
  builder = tfds.builder(name, data_dir=data_dir)
  assert builder.is_prepared() and list(builder.info.splits) == [split]
  ds = builder.as_dataset(split=split, decoders={"hr": tfds.decode.SkipDecoding()})
  stored = [(ex["name"].decode(), ex["hr"]) for ex in ds.as_numpy_iterator()]
  expected = _expected(files)
  assert stored == [(n, data) for n, data, _, _ in expected]
  assert [image.name for image in loaded] == [n for n, _, _, _ in expected]
  for image, (_, _, pixels, grayscale) in zip(loaded, expected):
    np.testing.assert_array_equal(image.hr, pixels)
    assert image.grayscale == grayscale
  return loaded


def _count_warning(caplog, name, found, expected):
  pattern = rf"{name}: found {found} images in .*, expected {expected} \(the published set\)"
  return any(re.match(pattern, r.getMessage()) for r in caplog.records
             if r.levelno == logging.WARNING)


@pytest.mark.parametrize("name,files,count,split", [
    ("b100", _B100, 100, "test"),  # benchmark/BSD100/HR/ (alias).
    ("urban100", _URBAN100, 100, "test"),  # benchmark.tar.
    ("div2k_valid", _DIV2K, 100, "validation"),  # DIV2K_valid_HR.zip.
    ("manga109", _MANGA109, 109, "test"),  # Manga109/HR/: .bmp, .PNG (RGBA), .jpg.
])
def test_builders_prepare_from_manual_dir(data_dir, caplog, name, files, count, split):
  with caplog.at_level(logging.WARNING):
    tfds.builder(name, data_dir=data_dir).download_and_prepare()
  assert _count_warning(caplog, name, len(files), count)
  _check_prepared(name, data_dir, files, split)


def test_eval_loading_prepares_from_manual_dir(data_dir, caplog):
  assert not tfds.builder("set5", data_dir=data_dir).is_prepared()
  with caplog.at_level(logging.WARNING):
    loaded = input_pipeline.load_eval_images("set5", data_dir)  # A bare name: tfds:set5.
  assert _count_warning(caplog, "set5", 3, 5)
  assert [image.name for image in loaded] == ["baby", "bird", "head"]
  _check_prepared("set5", data_dir, _SET5)
  # The grayscale flag (and pixels) are those of the same files read as a folder.
  from_tfds = _check_prepared("set14", data_dir, _SET14)
  from_folder = input_pipeline.load_eval_images(
      "folder:" + os.path.join(data_dir, "downloads", "manual", "set14"))
  assert [(i.name, i.grayscale) for i in from_tfds] == [(i.name, i.grayscale)
                                                         for i in from_folder]
  assert [i.grayscale for i in from_tfds] == [True, False, False]  # baboon.png is "L".
  for a, b in zip(from_tfds, from_folder):
    np.testing.assert_array_equal(a.hr, b.hr)
  assert datasets.prepare_if_manual("set5", data_dir)  # Already prepared.


def test_missing_data_errors_name_the_manual_folder(tmp_path):
  data_dir = str(tmp_path)
  manual = os.path.join(data_dir, "downloads", "manual")
  for name in ("set5", "mnist", "no_such_dataset_jaxsr"):
    assert not datasets.prepare_if_manual(name, data_dir)
  layout = re.escape(f"{os.path.join(manual, 'Set5', '')}, Set5/HR/ or benchmark/Set5/HR/")
  online = r"tfds.builder\('set5'.*tfds build set5 .*--imports jaxsr.datasets"
  with pytest.raises(ValueError, match=f"{layout}.*benchmark.tar.*{online}"):
    input_pipeline.load_eval_images("set5", data_dir)
  with pytest.raises(ValueError, match=re.escape(os.path.join(manual, "B100", "")) +
                     ".*may also be called BSD100 or BSDS100"):
    input_pipeline.load_eval_images("tfds:b100", data_dir)
  assert not [f for _, _, files in os.walk(tmp_path) for f in files]  # Nothing downloaded.
  # Direct builds: manga109 (no download URL) names the layout and where to ask for the data.
  _write(os.path.join(manual, "Set5"), _SET5)
  with pytest.raises(ValueError, match="No manga109 images in .*Manga109/HR/.*manga109.org"):
    tfds.builder("manga109", data_dir=data_dir).download_and_prepare()
  with pytest.raises(ValueError, match="Cannot download .*benchmark.tar .*Download attempted"
                     ".*Set14/HR/"):  # No manual set14: a download, which fails here.
    tfds.builder("set14", data_dir=data_dir).download_and_prepare()


def test_prepare_if_manual_when_another_process_prepares_first(tmp_path, monkeypatch):
  _write(tmp_path / "downloads" / "manual" / "Set5", _SET5)
  prepare = datasets.BenchmarkBuilder.download_and_prepare

  def racing(self, **kwargs):
    prepare(tfds.builder("set5", data_dir=str(tmp_path)), **kwargs)  # The other process.
    raise FileExistsError("rename of the incomplete dir failed")
  monkeypatch.setattr(datasets.BenchmarkBuilder, "download_and_prepare", racing)
  assert datasets.prepare_if_manual("set5", str(tmp_path))
  _write(tmp_path / "downloads" / "manual" / "Set14", _SET14)
  monkeypatch.setattr(datasets.BenchmarkBuilder, "download_and_prepare",
                      lambda self, **kwargs: _raise(FileExistsError("disk")))
  with pytest.raises(FileExistsError, match="disk"):  # Not prepared by anyone: the error.
    datasets.prepare_if_manual("set14", str(tmp_path))


def _raise(error):
  raise error


def test_find_manual_data_layouts(tmp_path):
  b100 = datasets.B100.SET
  assert datasets.find_manual_data(b100, str(tmp_path)) is None
  _write(tmp_path / "bsds100", {"LR_bicubic/X4/a.png": b"x"})  # LR only: not the set.
  assert datasets.find_manual_data(b100, str(tmp_path)) is None
  _write(tmp_path, {"Benchmark.TAR": b"x"})
  assert datasets.find_manual_data(b100, str(tmp_path)) == str(tmp_path / "Benchmark.TAR")
  _write(tmp_path / "bsds100" / "hr", {"a.png": b"x"})  # A folder wins over the archive.
  assert datasets.find_manual_data(b100, str(tmp_path)) == str(tmp_path / "bsds100" / "hr")
  _write(tmp_path / "B100", {"b.jpeg": b"x"})
  assert datasets.find_manual_data(b100, str(tmp_path)) == str(tmp_path / "B100")
  assert datasets.find_manual_data(datasets.Manga109.SET, str(tmp_path)) is None
