"""Tests for jaxsr.data.sources: specs, the host-side check of bad files, pairing, tfds."""

import io
import logging
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxsr.data import input_pipeline
from jaxsr.data import sources

RNG = np.random.default_rng(0)


def _random_image(height, width, channels=3, dtype=np.uint8):
  high = np.iinfo(dtype).max + 1
  return RNG.integers(0, high, (height, width, channels), dtype=dtype)


def _smooth_image(height, width):
  """A gradient image (JPEG keeps it within a few levels)."""
  ys, xs = np.meshgrid(np.linspace(40, 200, height), np.linspace(30, 220, width), indexing="ij")
  return np.stack([ys, xs, np.full_like(ys, 128.0)], axis=-1).astype(np.uint8)


def _save(path, array, **kwargs):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path, **kwargs)


def _png_bytes(array):
  return tf.io.encode_png(array).numpy()  # Also writes 16-bit PNGs (PIL cannot for RGB).


def _warnings(caplog):
  return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def _decoded(source):
  return dict(zip([e.name for e in source.hr], sources.read_images(source.hr)))


def test_parse_spec():
  assert sources.parse_spec("folder:/a/b") == ("folder", ["/a/b"])
  assert sources.parse_spec("paired:/lr:/hr") == ("paired", ["/lr", "/hr"])
  assert sources.parse_spec("tfds:div2k/bicubic_x4") == ("tfds", ["div2k/bicubic_x4", ""])
  assert sources.parse_spec("tfds:set5:test") == ("tfds", ["set5", "test"])
  for bad in ("set5", "folder:", "paired:/lr", "zip:/a", "tfds:"):
    with pytest.raises(ValueError, match="folder:<dir>"):
      sources.parse_spec(bad)


def test_folder_is_recursive_sorted_and_filters_extensions(tmp_path):
  images = {"b.png": _random_image(20, 22), "a/z.PNG": _random_image(21, 20),
            "a/c.bmp": _random_image(20, 20), "d.JPG": _smooth_image(24, 20)}
  for name, array in images.items():
    _save(str(tmp_path / name), array, **({"quality": 100} if name.endswith("JPG") else {}))
  (tmp_path / "notes.txt").write_text("not an image")
  source = sources.load_source(f"folder:{tmp_path}", min_hr_size=8)
  assert [e.name for e in source.hr] == ["a/c.bmp", "a/z.PNG", "b.png", "d.JPG"]
  assert source.lr is None
  assert (source.summary.kept, source.summary.converted, source.summary.skipped) == (4, 0, 0)
  decoded = _decoded(source)
  for name in ("a/c.bmp", "a/z.PNG", "b.png"):  # Lossless: exact pixels.
    np.testing.assert_array_equal(decoded[name], images[name])
  assert np.abs(decoded["d.JPG"].astype(int) - images["d.JPG"]).mean() < 4
  # Direct files are read from disk by the pipeline; BMP is re-encoded in memory.
  assert {e.name: bool(e.data) for e in source.hr} == {
      "a/c.bmp": True, "a/z.PNG": False, "b.png": False, "d.JPG": False}


def _write_bad_and_odd_files(folder):
  """Writes one file of each kind -> {name: expected uint8 RGB or None if skipped}."""
  rgb = _random_image(24, 20)
  expected = {}

  def write(name, data, want):
    (folder / name).write_bytes(data)
    expected[name] = want

  good = _png_bytes(rgb)
  write("good.png", good, rgb)
  write("empty.png", b"", None)
  write("text.png", b"this is not an image at all" * 10, None)
  write("truncated.png", good[:len(good) // 2], None)
  write("no_end.png", good[:-12], None)  # IEND chunk cut off: PIL loads it, TF does not.
  buffer = io.BytesIO()
  Image.fromarray(rgb).save(buffer, "JPEG", quality=95)
  write("truncated.jpg", buffer.getvalue()[:len(buffer.getvalue()) * 2 // 3], None)
  write("small.png", _png_bytes(_random_image(24, 7)), None)

  rgb16 = _random_image(24, 20, 3, np.uint16)
  write("rgb16.png", _png_bytes(rgb16), np.round(rgb16 / 257.0).astype(np.uint8))
  gray16 = _random_image(20, 24, 1, np.uint16)
  write("gray16.png", _png_bytes(gray16),
        np.repeat(np.round(gray16 / 257.0).astype(np.uint8), 3, axis=-1))
  gray = _random_image(20, 20, 1)
  write("gray.png", _png_bytes(gray), np.repeat(gray, 3, axis=-1))
  smooth = _smooth_image(24, 20)
  smooth_gray = smooth[..., :1]
  rgba = _random_image(20, 20, 4)
  write("rgba.png", _png_bytes(rgba), rgba[..., :3])
  palette = Image.fromarray(rgb).quantize(16)
  buffer = io.BytesIO()
  palette.save(buffer, "PNG")
  write("palette.png", buffer.getvalue(), np.asarray(palette.convert("RGB")))
  buffer = io.BytesIO()
  Image.fromarray(smooth).convert("CMYK").save(buffer, "JPEG", quality=100)
  write("cmyk.jpg", buffer.getvalue(), smooth)  # Lossy: compared with a tolerance.
  buffer = io.BytesIO()
  Image.fromarray(smooth_gray[..., 0]).save(buffer, "JPEG", quality=100)
  write("gray.jpg", buffer.getvalue(), np.repeat(smooth_gray, 3, axis=-1))  # Lossy too.
  return expected


def test_bad_files_are_skipped_and_odd_ones_converted(tmp_path, caplog):
  expected = _write_bad_and_odd_files(tmp_path)
  with caplog.at_level(logging.WARNING):
    source = sources.load_source(f"folder:{tmp_path}", min_hr_size=16)
  messages = _warnings(caplog)
  reasons = {"empty.png": "empty file", "text.png": "not a readable image",
             "truncated.png": "truncated", "no_end.png": "truncated",
             "truncated.jpg": "truncated", "small.png": "smaller than the 16x16 patch",
             "rgb16.png": "16-bit RGB PNG", "gray16.png": "16-bit grayscale PNG",
             "gray.png": "8-bit grayscale PNG", "rgba.png": "alpha dropped",
             "palette.png": "palette PNG", "cmyk.jpg": "CMYK JPEG",
             "gray.jpg": "grayscale JPEG"}
  for name, reason in reasons.items():
    verb = "Skipping" if expected[name] is None else "Converting"
    assert any(m.startswith(f"{verb} image {tmp_path / name}: ") and reason in m
               for m in messages), (name, messages)
  assert not any("good.png" in m for m in messages)

  kept = sorted(n for n, want in expected.items() if want is not None)
  assert [e.name for e in source.hr] == kept
  assert (source.summary.kept, source.summary.converted, source.summary.skipped) == (
      len(kept), len(kept) - 1, len(expected) - len(kept))
  decoded = _decoded(source)  # The pipeline's decoder reads every kept image.
  for name in kept:
    assert decoded[name].shape == expected[name].shape, name
    if name.endswith(".jpg"):
      assert np.abs(decoded[name].astype(int) - expected[name]).mean() < 3, name
    else:
      np.testing.assert_array_equal(decoded[name], expected[name], err_msg=name)


def test_folder_without_usable_images_raises(tmp_path):
  (tmp_path / "empty.png").write_bytes(b"")
  (tmp_path / "text.jpg").write_bytes(b"nope")
  spec = f"folder:{tmp_path}"
  with pytest.raises(ValueError, match=f"No usable image in data spec '{spec}'"):
    sources.load_source(spec)
  with pytest.raises(ValueError, match="does not exist"):
    sources.load_source(f"folder:{tmp_path}/missing")


def test_paired_matches_names_and_checks_sizes(tmp_path, caplog):
  scale = 2
  hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
  hr = {name: _random_image(h, w) for name, h, w in
        [("0001", 24, 20), ("0002", 25, 21), ("0003", 24, 24), ("sub/0004", 20, 20),
         ("0005", 22, 22)]}
  for name, array in hr.items():
    _save(str(hr_dir / f"{name}.png"), array)
  lr = {"0001x2": _random_image(12, 10), "0002": _random_image(12, 10),  # 25x21 mod-crops.
        "0003x2": _random_image(11, 12), "sub/0004x2": _random_image(10, 10),
        "0006x2": _random_image(12, 12)}
  for name, array in lr.items():
    _save(str(lr_dir / f"{name}.png"), array)
  with caplog.at_level(logging.WARNING):
    source = sources.load_source(f"paired:{lr_dir}:{hr_dir}", scale=scale, min_hr_size=16)
  messages = _warnings(caplog)
  assert [e.name for e in source.hr] == ["0001.png", "0002.png", "sub/0004.png"]
  assert [e.name for e in source.lr] == ["0001x2.png", "0002.png", "sub/0004x2.png"]
  assert any(f"{lr_dir}/0003x2.png / {hr_dir}/0003.png: LR is 11x12, expected 12x12" in m
             for m in messages)
  assert any(f"HR image {hr_dir}/0005.png: no LR image" in m for m in messages)
  assert any(f"LR image {lr_dir}/0006x2.png: no HR image" in m for m in messages)
  assert (source.summary.kept, source.summary.skipped) == (3, 3)
  for entry, image in zip(source.lr, sources.read_images(source.lr)):
    np.testing.assert_array_equal(image, lr[os.path.splitext(entry.name)[0]])


# --- tfds ---------------------------------------------------------------------------------------

_TFDS_HR = [_random_image(24, 28), _random_image(28, 24), _random_image(26, 26)]
_TFDS_IMAGES16 = [_random_image(20, 22, 1, np.uint16), _random_image(6, 6, 1, np.uint16)]


class JaxsrTestPairs(tfds.core.GeneratorBasedBuilder):
  """Tiny paired SR dataset (x2; the last pair has a wrong LR size)."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "hr": tfds.features.Image(shape=(None, None, 3)),
        "lr": tfds.features.Image(shape=(None, None, 3)),
        "name": tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for k, hr in enumerate(_TFDS_HR):
      lr = hr[::2, ::2] if k < 2 else hr[:12, :12]
      yield k, {"hr": hr, "lr": lr, "name": f"img{k}.png"}


class JaxsrTestImages16(tfds.core.GeneratorBasedBuilder):
  """Tiny HR-only dataset of 16-bit grayscale images (the second one too small)."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(None, None, 1), dtype=np.uint16)}))

  def _split_generators(self, dl_manager):
    return {"test": self._generate_examples()}

  def _generate_examples(self):
    for k, image in enumerate(_TFDS_IMAGES16):
      yield k, {"image": image}


def test_tfds_sources_load_offline_from_data_dir(tmp_path, caplog):
  data_dir = str(tmp_path / "tfds")
  with pytest.raises(ValueError, match="not prepared .*tfds build jaxsr_test_pairs"):
    sources.load_source("tfds:jaxsr_test_pairs", scale=2, data_dir=data_dir)
  tfds.disable_progress_bar()
  for builder in (JaxsrTestPairs, JaxsrTestImages16):
    builder(data_dir=data_dir).download_and_prepare()

  with caplog.at_level(logging.WARNING):
    paired = sources.load_source("tfds:jaxsr_test_pairs", scale=2, min_hr_size=8,
                                 data_dir=data_dir)
  assert [e.name for e in paired.hr] == ["img0", "img1"]
  assert any("img2 / img2: LR is 12x12, expected 13x13" in m for m in _warnings(caplog))
  for k, (hr, lr) in enumerate(zip(sources.read_images(paired.hr),
                                   sources.read_images(paired.lr))):
    np.testing.assert_array_equal(hr, _TFDS_HR[k])
    np.testing.assert_array_equal(lr, _TFDS_HR[k][::2, ::2])

  hr_only = sources.load_source("tfds:jaxsr_test_pairs:train", data_dir=data_dir, hr_only=True)
  assert hr_only.lr is None and len(hr_only.hr) == 3

  with pytest.raises(ValueError, match="no split 'train'"):
    sources.load_source("tfds:jaxsr_test_images16", data_dir=data_dir)
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    images = sources.load_source("tfds:jaxsr_test_images16", min_hr_size=8, data_dir=data_dir,
                                 default_splits=("test",))
  # Without a name feature, examples are named by their position in the prepared files.
  assert len(images.hr) == 1 and images.hr[0].name in ("000000", "000001")
  assert any(f"Converting image {images.hr[0].name}: 16-bit grayscale PNG" in m
             for m in _warnings(caplog))
  assert any(m.startswith("Skipping image 00000") and "6x6 is smaller" in m
             for m in _warnings(caplog))
  expected = np.repeat(np.round(_TFDS_IMAGES16[0] / 257.0).astype(np.uint8), 3, axis=-1)
  (image,) = sources.read_images(images.hr)
  np.testing.assert_array_equal(image, expected)
  # Eval: a bare tfds name, its test split by default.
  loaded = {image.name: image.hr
            for image in input_pipeline.load_eval_images("jaxsr_test_images16", data_dir)}
  assert sorted(loaded) == ["000000", "000001"]  # No patch size: the 6x6 image is kept.
  np.testing.assert_array_equal(loaded[images.hr[0].name], expected)


def test_tfds_errors_before_any_download(tmp_path):
  with pytest.raises(ValueError, match="x4 LR images but scale=2"):
    sources.load_source("tfds:div2k/bicubic_x4", scale=2, data_dir=str(tmp_path))
  with pytest.raises(ValueError, match="not prepared .*tfds build div2k/bicubic_x4"):
    sources.load_source("tfds:div2k/bicubic_x4", scale=4, data_dir=str(tmp_path))
  with pytest.raises(ValueError, match="neither registered nor prepared"):
    sources.load_source("tfds:no_such_dataset_jaxsr", data_dir=str(tmp_path))
  assert not [f for _, _, files in os.walk(tmp_path) for f in files]  # Nothing downloaded.
