"""Corrupt and odd files in training, eval and upscale folders: each one converted or skipped by
name, the run goes on, the counts add up.

`make_zoo` writes one file of each kind; `EXPECTED` says what each consumer does with it.
"""

import errno
import io
import logging
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image
import pytest

from jaxsr import builders
from jaxsr import config_base
from jaxsr import evaluate
from jaxsr import image_io
from jaxsr.data import input_pipeline
from jaxsr.data import sources

from tests import utils

HUGE = 10_000  # huge.png is HUGE x HUGE: over PIL's ~89-Mpixel limit, 300 KB as a PNG.
IS_ROOT = os.geteuid() == 0  # Root reads a chmod 000 file: that case needs another user.

# name: (training with 16x16 patches, eval at x2, upscale); each None (used as is; upscale
# keeps bit depth and mode), "convert: <reason>", "skip: <reason>" (reasons matched
# case-insensitively in the warning naming the file) or "ignore" (named in one warning, see
# `_assert_folder_notes`; upscale does not read subfolders).
EXPECTED = {
    "good.png": (None, None, None),
    "photo.jpg": (None, None, None),
    # JPEG has no checksum: libjpeg conceals damaged entropy-coded data, nothing can tell.
    "corrupt_scan.jpg": (None, None, None),
    "rgb16.png": ("convert: 16-bit RGB PNG -> 8-bit RGB",) * 2 + (None,),
    "gray.png": ("convert: 8-bit grayscale PNG",) * 2 + (None,),
    "gray_alpha.png": ("convert: 8-bit grayscale+alpha PNG -> 8-bit RGB (alpha dropped)",) * 2
                      + (None,),
    "palette.png": ("convert: 8-bit palette PNG",) * 2 + (None,),
    "cmyk.jpg": ("convert: CMYK JPEG -> 8-bit RGB",) * 2 + (None,),
    "one.png": ("skip: 1x1 is smaller than the 16x16 patch",
                "skip: 1x1 is smaller than the 16x16 minimum to evaluate at x2", None),
    "huge.png": (None,) + ("skip: 10000x10000 is 100000000 pixels, over the limit of "
                           f"{Image.MAX_IMAGE_PIXELS} (max_pixels)",) * 2,
    "corrupt.png": ("skip: corrupt or truncated",) * 3,  # Bytes flipped in IDAT.
    "corrupt_header.jpg": ("skip: corrupt or truncated",) * 3,  # Bogus Huffman table.
    "empty.png": ("skip: empty file (0 bytes)",) * 3,
    "truncated.png": ("skip: corrupt or truncated",) * 3,
    "truncated.jpg": ("skip: truncated",) * 3,
    "text.png": ("skip: not a readable image",) * 3,
    "notes.txt": ("ignore", "ignore", "skip: not a readable image"),
    "loop_a.png": ("skip: cannot read the file (symlink loop)",) * 3,
    "loop_b.png": ("skip: cannot read the file (symlink loop)",) * 3,
    "dangling.png": ("skip: cannot read the file (dangling symlink to missing.png)",) * 3,
    "fifo.png": ("skip: not a regular file",) * 3,  # Opening it would block forever.
    "sub/inner.png": (None, None, "ignore"),  # Upscale lists a folder's files, not subfolders.
}
if not IS_ROOT:
  EXPECTED["unreadable.png"] = ("skip: cannot read the file (permission denied)",) * 3
TRAIN, EVAL, UPSCALE = range(3)


def _encode(array, fmt, mode=None, **options) -> bytes:
  image = Image.fromarray(array)
  buffer = io.BytesIO()
  (image.convert(mode) if mode else image).save(buffer, fmt, **options)
  return buffer.getvalue()


def _png16(rgb: np.ndarray) -> bytes:
  """A 16-bit RGB PNG (PIL writes none): TensorFlow's encoder."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.encode_png(rgb.astype(np.uint16) * 257).numpy()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
  return (struct.pack(">I", len(data)) + kind + data
          + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def constant_png(width: int, height: int, rgb=(200, 100, 50)) -> bytes:
  """An 8-bit RGB PNG of one colour, row by row (never the whole image in memory)."""
  compressor = zlib.compressobj(9)
  row = b"\x00" + bytes(rgb) * width  # Filter byte 0, then the pixels.
  idat = b"".join([compressor.compress(row) for _ in range(height)] + [compressor.flush()])
  header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
  return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat)
          + _png_chunk(b"IEND", b""))


def _flipped(data: bytes, start: int, count: int, mask: int = 0xFF) -> bytes:
  out = bytearray(data)
  for k in range(start, start + count):
    out[k] ^= mask
  return bytes(out)


def make_zoo(folder) -> None:
  """Writes the files of `EXPECTED` to `folder`, and `sub/up` -> `..` (a folder link loop)."""
  os.makedirs(folder / "sub")
  rgb = utils.smooth_image(np.random.default_rng(0), 40, 48)
  png, jpg = _encode(rgb, "PNG"), _encode(rgb, "JPEG", quality=95)
  scan = jpg.index(b"\xff\xda")
  huffman = jpg.index(b"\xff\xc4")
  files = {
      "good.png": png, "photo.jpg": jpg,
      "corrupt_scan.jpg": _flipped(jpg, scan + (len(jpg) - scan) // 3, 64, 0x55),
      "rgb16.png": _png16(rgb),
      "gray.png": _encode(rgb[..., 0], "PNG"),
      "gray_alpha.png": _encode(rgb[..., 0], "PNG", mode="LA"),
      "palette.png": _encode(rgb, "PNG", mode="P"),
      "cmyk.jpg": _encode(rgb, "JPEG", mode="CMYK", quality=95),
      "one.png": _encode(rgb[:1, :1], "PNG"),
      "huge.png": constant_png(HUGE, HUGE),
      "corrupt.png": _flipped(png, png.index(b"IDAT") + 14, 32),
      "corrupt_header.jpg": _flipped(jpg, huffman + 5, 16),  # Its code counts.
      "empty.png": b"",
      "truncated.png": png[:len(png) // 2],
      "truncated.jpg": jpg[:len(jpg) // 2],
      "text.png": b"this is not an image\n" * 10,
      "notes.txt": b"notes about the images\n",
      "sub/inner.png": png,
      "unreadable.png": png,
  }
  for name, data in files.items():
    if name in EXPECTED:
      (folder / name).write_bytes(data)
  if "unreadable.png" in EXPECTED:
    os.chmod(folder / "unreadable.png", 0)
  os.symlink("loop_b.png", folder / "loop_a.png")
  os.symlink("loop_a.png", folder / "loop_b.png")
  os.symlink("missing.png", folder / "dangling.png")
  os.mkfifo(folder / "fifo.png")
  os.symlink("..", folder / "sub" / "up")


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
  folder = tmp_path_factory.mktemp("zoo")
  make_zoo(folder)
  return folder


def _expected(column: int, kind: str):
  """Names that `column` of EXPECTED uses ('use': as is or converted), converts or skips."""
  def matches(want):
    return {"use": want is None or want.startswith("convert"),
            "convert": (want or "").startswith("convert"),
            "skip": (want or "").startswith("skip")}[kind]
  return sorted(name for name, wants in EXPECTED.items() if matches(wants[column]))


def _warnings(caplog):
  return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def _assert_each_file_named(folder, messages, column):
  """One 'Skipping image <path>: <reason>' / 'Converting image ...' warning per file that
  `column` skips or converts; none for files used as they are."""
  for name, wants in EXPECTED.items():
    want, path = wants[column], str(folder / name)
    if want is None:
      assert not [m for m in messages if f" {path}:" in m], name
    elif want != "ignore":
      verb, reason = want.split(": ", 1)
      start = f"{'Skipping' if verb == 'skip' else 'Converting'} image {path}: "
      assert [m for m in messages if m.startswith(start) and reason.lower() in m.lower()], (
          name, want, [m for m in messages if path in m])


def _assert_folder_notes(folder, messages):
  """notes.txt is named once, and the sub/up -> .. loop lists the folder once."""
  assert (f"Ignoring 1 file(s) in {folder} without an image extension (.png .jpg .jpeg .bmp): "
          "notes.txt.") in messages
  assert (f"Skipping folder {folder}/sub/up: already listed as {os.path.realpath(folder)} "
          "(symlink loop or duplicate link).") in messages


def test_training_converts_or_skips_each_file_and_reads_every_kept_one(zoo, caplog):
  config = utils.tiny_config(str(zoo))  # 16x16 HR patches at x2.
  used = _expected(TRAIN, "use")
  config.batch_size = len(used)  # The first batch reads each image once (one epoch).
  with caplog.at_level(logging.WARNING):
    source = input_pipeline.load_train_source(config)
  messages = _warnings(caplog)
  _assert_each_file_named(zoo, messages, TRAIN)
  _assert_folder_notes(zoo, messages)
  assert [e.name for e in source.hr] == used  # sub/inner.png once, huge.png kept.
  assert source.summary == sources.Summary(len(used), len(_expected(TRAIN, "convert")),
                                           len(_expected(TRAIN, "skip")))
  batch = next(input_pipeline.create_train_dataset(config, source).as_numpy_iterator())
  assert batch["hr"].shape == (len(used), 16, 16, 3) and batch["lr"].shape == (len(used), 8, 8,
                                                                                3)
  huge = np.array([200, 100, 50], np.float32) / 255  # constant_png's colour.
  assert sum(np.allclose(hr, huge) for hr in batch["hr"]) == 1


def test_eval_converts_or_skips_each_file_and_evaluates_every_kept_one(zoo, caplog):
  with caplog.at_level(logging.INFO):
    images = input_pipeline.load_eval_images(f"folder:{zoo}", scale=2)
  messages = _warnings(caplog)
  _assert_each_file_named(zoo, messages, EVAL)
  _assert_folder_notes(zoo, messages)
  used = _expected(EVAL, "use")
  assert [image.name for image in images] == [os.path.splitext(name)[0] for name in used]
  assert f"Eval data folder:{zoo}: {len(used)} kept ({len(_expected(EVAL, 'convert'))} " \
      f"converted), {len(_expected(EVAL, 'skip'))} skipped" in [
          r.getMessage() for r in caplog.records]
  # What `evaluate.load_eval_sets` and validation do with them: every image measures.
  pairs = [evaluate.EvalPair(image.name, *input_pipeline.make_eval_pair(image.hr, 2),
                             image.grayscale) for image in images]
  config = config_base.base_config()
  config.model.name, config.scale = "bicubic", 2
  sr_fn = evaluate.make_sr_fn(builders.make_apply_fn(builders.model_from_config(config)))
  summary, _ = evaluate.evaluate_set(sr_fn, {}, pairs, 2, evaluate.make_image_measures(2))
  assert [result["name"] for result in summary["images"]] == [p.name for p in pairs]
  assert all(np.isfinite(result["psnr_y"]) and np.isfinite(result["ssim_y"])
             for result in summary["images"])


@pytest.fixture(scope="module")
def bicubic_run(tmp_path_factory):
  """A parameter-free bicubic x2 run: config.json only."""
  workdir = tmp_path_factory.mktemp("run")
  config = config_base.base_config()
  config.model.name, config.scale = "bicubic", 2
  (workdir / "config.json").write_text(config.to_json_best_effort())
  return workdir


def test_upscale_cli_writes_each_image_and_skips_each_bad_file_by_name(zoo, bicubic_run,
                                                                       tmp_path):
  out = tmp_path / "out"
  result = utils.run_process(
      [sys.executable, "-m", "jaxsr.upscale", f"--workdir={bicubic_run}", f"-i={zoo}",
       f"-o={out}"], env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stderr.splitlines()
  for name in _expected(UPSCALE, "skip"):
    reason = EXPECTED[name][UPSCALE].split(": ", 1)[1]
    assert [line for line in lines if f"Skipping unreadable file {zoo / name}: " in line
            and reason.lower() in line.lower()], (name, reason, result.stderr[-3000:])
  written = _expected(UPSCALE, "use")
  assert f"Wrote {len(written)} image(s); skipped {len(_expected(UPSCALE, 'skip'))} " \
      "unreadable, 0 failed." in result.stderr
  assert sorted(os.listdir(out)) == sorted(
      f"{stem}_out{ext if ext == '.jpg' else '.png'}"
      for stem, ext in map(os.path.splitext, written))
  with Image.open(zoo / "good.png") as good:
    size = (2 * good.width, 2 * good.height)
  for name, mode in (("good", "RGB"), ("gray", "L"), ("gray_alpha", "LA"), ("palette", "RGB")):
    with Image.open(out / f"{name}_out.png") as image:
      assert (image.mode, image.size) == (mode, size), name
  rgb16 = (out / "rgb16_out.png").read_bytes()
  assert image_io.png_header(rgb16) == (16, 2)  # 16-bit RGB, as the input.
  assert struct.unpack(">II", rgb16[16:24]) == size
  with Image.open(out / "one_out.png") as one:
    assert one.size == (2, 2)
  for name in ("photo", "cmyk", "corrupt_scan"):
    with Image.open(out / f"{name}_out.jpg") as image:
      assert (image.mode, image.size) == ("RGB", size), name
  # Nothing written: exit status 1 (explicit files, links included, as for a folder).
  bad = ",".join(str(zoo / name) for name in ("empty.png", "loop_a.png", "dangling.png"))
  result = utils.run_process(
      [sys.executable, "-m", "jaxsr.upscale", f"--workdir={bicubic_run}", f"-i={bad}",
       f"-o={tmp_path / 'none'}"], env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 1, result.stderr[-3000:]
  assert "Wrote 0 image(s); skipped 3 unreadable, 0 failed." in result.stderr


def test_read_errors_name_the_file_and_the_reason(tmp_path, monkeypatch, caplog):
  """Permission denied (simulated: root reads a chmod 000 file) and the pixel limit."""
  png = _encode(utils.smooth_image(np.random.default_rng(1), 20, 20), "PNG")
  for name in ("a.png", "locked.png"):
    (tmp_path / name).write_bytes(png)
  real_open = open

  def fake_open(path, *args, **kwargs):
    if os.path.basename(path) == "locked.png":
      raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
    return real_open(path, *args, **kwargs)

  monkeypatch.setattr(image_io, "open", fake_open, raising=False)
  with caplog.at_level(logging.WARNING):
    source = sources.load_source(f"folder:{tmp_path}")
  assert [e.name for e in source.hr] == ["a.png"]
  assert (f"Skipping image {tmp_path}/locked.png: cannot read the file (Permission denied)."
          in _warnings(caplog))
  with pytest.raises(image_io.UnreadableImageError,
                     match=r"locked.png: cannot read the file \(Permission denied\)$"):
    image_io.read_image(str(tmp_path / "locked.png"))
  path = str(tmp_path / "a.png")
  with pytest.raises(image_io.UnreadableImageError,
                     match=r"a.png: 20x20 is 400 pixels, over the limit of 399 \(max_pixels\)$"):
    image_io.read_image(path, max_pixels=399)
  assert image_io.read_image(path, max_pixels=400)[0].shape == (20, 20, 3)
  assert image_io.read_image(path, max_pixels=0)[0].shape == (20, 20, 3)


@pytest.mark.skipif(not IS_ROOT, reason="the zoo tests have a chmod 000 file")
def test_chmod_000_file_is_skipped_by_name_outside_root_powers(tmp_path):
  """Root reads anything: read in a user namespace, where root-owned files get owner rights."""
  png = _encode(utils.smooth_image(np.random.default_rng(2), 20, 20), "PNG")
  for name in ("a.png", "unreadable.png"):
    (tmp_path / name).write_bytes(png)
  os.chmod(tmp_path / "unreadable.png", 0)
  code = ("from jaxsr.data import sources; from jaxsr import image_io; "
          f"print(sources.load_source('folder:{tmp_path}').summary); "
          f"image_io.read_image('{tmp_path}/unreadable.png')")
  try:
    result = utils.run_process(["unshare", "--user", sys.executable, "-c", code],
                               env=dict(os.environ))
  except FileNotFoundError:
    pytest.skip("no unshare")
  if "unshare failed" in result.stderr or "unshare:" in result.stderr:
    pytest.skip(f"no user namespaces: {result.stderr.strip()[-200:]}")
  assert "1 kept (0 converted), 1 skipped" in result.stdout, result.stderr[-2000:]
  assert (f"Skipping image {tmp_path}/unreadable.png: cannot read the file (Permission "
          "denied).") in result.stderr
  assert (f"UnreadableImageError: {tmp_path}/unreadable.png: cannot read the file (Permission "
          "denied)") in result.stderr


def test_eval_sets_skip_images_too_small_to_measure(zoo):
  sets = evaluate.load_eval_sets(f"folder:{zoo}", scale=2)
  assert "one" not in [pair.name for pair in sets[evaluate.dataset_name(f"folder:{zoo}")]]
