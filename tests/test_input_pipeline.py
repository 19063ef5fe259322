"""Tests for jaxsr.data.input_pipeline: determinism, resume, process split, crops, LR, eval."""

import itertools
import logging
import os

import ml_collections
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
import pytest
import tensorflow as tf

from jaxsr.data import input_pipeline
from jaxsr.ops.imresize import imresize_np

from tests import utils

NUM_IMAGES = 5
GT_SIZE = 12


def _random_images(seed, shapes):
  rng = np.random.default_rng(seed)
  return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


@pytest.fixture(scope="module")
def hr_folder(tmp_path_factory):
  """Folder of NUM_IMAGES random HR PNGs of different sizes -> (path, images sorted by name)."""
  folder = tmp_path_factory.mktemp("hr")
  images = _random_images(1, [(20 + 3 * k, 26 - 2 * k) for k in range(NUM_IMAGES)])
  for k, image in enumerate(images):
    Image.fromarray(image).save(folder / f"img{k}.png")
  return str(folder), images


def _config(train, **data):
  config = ml_collections.ConfigDict()
  config.scale = 2
  config.seed = 3
  config.batch_size = 4
  config.data = ml_collections.ConfigDict(dict(
      train=train, data_dir="", gt_size=GT_SIZE, use_flip=True, use_rot=True, cache=False,
      quantize_lr=True, prefetch=2))
  config.data.update(data)
  return config


def _batches(config, num, **kwargs):
  return list(itertools.islice(input_pipeline.create_train_iter(config, **kwargs), num))


def _assert_same(batches_a, batches_b):
  assert len(batches_a) == len(batches_b)
  for a, b in zip(batches_a, batches_b):
    np.testing.assert_array_equal(a["lr"], b["lr"])
    np.testing.assert_array_equal(a["hr"], b["hr"])


def _unaugment(patch, hflip, vflip, transpose):
  """Inverse of BasicSR augment (hflip, then vflip, then transpose)."""
  if transpose:
    patch = patch.transpose(1, 0, 2)
  if vflip:
    patch = patch[::-1]
  if hflip:
    patch = patch[:, ::-1]
  return patch


def _locate(patch, images):
  """uint8 patch -> [(image index, top, left, flips)] where an augmented crop equals it."""
  size = patch.shape[0]
  found = []
  for flips in itertools.product((False, True), repeat=3):
    crop = _unaugment(patch, *flips)
    for k, image in enumerate(images):
      windows = sliding_window_view(image, (size, size, 3))[:, :, 0]
      tops, lefts = np.nonzero((windows == crop).all(axis=(2, 3, 4)))
      found += [(k, int(t), int(l), flips) for t, l in zip(tops, lefts)]
  return found


def _to_uint8(x):
  return np.round(x * 255.0).astype(np.uint8)


def _bicubic_lr(hr, scale, quantize):
  lr = np.clip(imresize_np(hr, 1.0 / scale), 0.0, 1.0)
  return np.round(lr * 255.0) / 255.0 if quantize else lr


def _assert_bicubic_lr(lr, hr, scale, quantize):
  """`lr` is TF's (float32) bicubic downscale of `hr`: numpy's float64 one within the rounding
  of two antialiased passes of 4 * scale + 2 taps; quantized, a value that close to a rounding
  tie may land one level either side."""
  expected = _bicubic_lr(hr, scale, quantize)
  tolerance = utils.tolerance(ops=2 * (4 * scale + 2))
  if quantize:
    utils.assert_levels_close(lr * 255, expected * 255, 255 * tolerance["atol"])
  else:
    np.testing.assert_allclose(lr, expected, **tolerance)


@pytest.mark.exact("the input pipeline is a pure function of the seed and the step: the same "
                   "batches again, after resume and split over processes (README)")
def test_same_seed_same_batches_resume_and_process_split(hr_folder):
  config = _config(f"folder:{hr_folder[0]}")
  reference = _batches(config, 4)
  assert reference[0]["lr"].shape == (4, GT_SIZE // 2, GT_SIZE // 2, 3)
  assert reference[0]["hr"].shape == (4, GT_SIZE, GT_SIZE, 3)
  for batch in reference:
    for x in batch.values():
      assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
  # (a) Same seed -> identical; the decoded-image cache changes nothing.
  _assert_same(_batches(config, 4), reference)
  _assert_same(_batches(_config(config.data.train, cache=True), 4), reference)
  # (b) A run resumed at step 2 continues exactly where the uninterrupted one was.
  resume_step = input_pipeline.input_state(2)["next_step"]
  _assert_same(_batches(config, 2, start_step=resume_step), reference[2:])
  # (c) Processes take contiguous slices of the global batch.
  parts = [_batches(config, 2, start_step=1, process_index=p, process_count=2)
           for p in range(2)]
  for step in range(2):
    assert parts[0][step]["hr"].shape[0] == 2
    merged = {k: np.concatenate([parts[0][step][k], parts[1][step][k]]) for k in ("lr", "hr")}
    _assert_same([merged], [reference[1 + step]])
  # Another seed -> other batches.
  config.seed = 4
  other = _batches(config, 2)
  assert not np.array_equal(other[0]["hr"], reference[0]["hr"])
  assert not np.array_equal(other[1]["hr"], reference[1]["hr"])


@pytest.mark.numerics
@pytest.mark.exact("HR crops and quantized LR are 8-bit levels k / 255, computed as k / 255 "
                   "in float32 here too")
def test_epochs_visit_every_image_once_and_lr_is_bicubic_of_real_crops(hr_folder):
  folder, images = hr_folder
  for quantize in (True, False):
    config = _config(f"folder:{folder}", use_flip=False, use_rot=False, quantize_lr=quantize)
    config.batch_size = NUM_IMAGES  # One epoch per step.
    epochs = []
    for batch in _batches(config, 3):
      order = []
      for lr, hr in zip(batch["lr"], batch["hr"]):
        (k, _, _, flips), = _locate(_to_uint8(hr), images)  # A crop of exactly one image.
        assert flips == (False, False, False)
        np.testing.assert_array_equal(_to_uint8(hr) / np.float32(255.0), hr)
        _assert_bicubic_lr(lr, hr, config.scale, quantize)
        if quantize:
          np.testing.assert_array_equal(_to_uint8(lr) / np.float32(255.0), lr)
        order.append(k)
      assert sorted(order) == list(range(NUM_IMAGES))
      epochs.append(order)
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]  # Reshuffled per epoch.


@pytest.mark.numerics
def test_flips_and_rotation_are_the_same_on_lr_and_hr(hr_folder):
  folder, images = hr_folder
  config = _config(f"folder:{folder}", quantize_lr=False)
  seen = set()
  for batch in _batches(config, 4):
    for lr, hr in zip(batch["lr"], batch["hr"]):
      (k, top, left, flips), = _locate(_to_uint8(hr), images)  # Random pixels: one match.
      crop = images[k][top:top + GT_SIZE, left:left + GT_SIZE] / np.float32(255.0)
      _assert_bicubic_lr(_unaugment(lr, *flips), crop, config.scale, quantize=False)
      seen.add(flips)
  assert len(seen) >= 4  # 16 draws over the 8 transforms.


@pytest.mark.exact("LR pixels are copies of the HR blocks' pixels (8-bit levels)")
def test_paired_crops_are_aligned(tmp_path):
  scale = 3
  lr_images = _random_images(2, [(8, 9), (10, 8), (9, 9)])
  for k, lr in enumerate(lr_images):
    hr = np.kron(lr, np.ones((scale, scale, 1), np.uint8))  # Each LR pixel -> a 3x3 HR block.
    hr = np.pad(hr, ((0, k % 3), (0, 1), (0, 0)))  # HR not a multiple of the scale: mod-crop.
    os.makedirs(tmp_path / "hr", exist_ok=True)
    os.makedirs(tmp_path / "lr", exist_ok=True)
    Image.fromarray(hr).save(tmp_path / "hr" / f"{k:04d}.png")
    Image.fromarray(lr).save(tmp_path / "lr" / f"{k:04d}x3.png")
  config = _config(f"paired:{tmp_path / 'lr'}:{tmp_path / 'hr'}", cache=True)
  config.scale = 3
  config.batch_size = 6
  for batch in _batches(config, 3):
    assert batch["lr"].shape == (6, GT_SIZE // scale, GT_SIZE // scale, 3)
    for lr, hr in zip(batch["lr"], batch["hr"]):
      np.testing.assert_array_equal(hr[::scale, ::scale], lr)
      np.testing.assert_array_equal(hr[1::scale, 2::scale], lr)
      assert _locate(_to_uint8(lr), lr_images)


@pytest.mark.exact("the decoded-image cache changes nothing: the same batches")
def test_converted_and_bmp_files_train_like_the_others(tmp_path):
  rgb, gray, bmp, plain = _random_images(6, [(16, 18), (18, 16), (17, 17), (16, 16)])
  gray = gray[..., :1]
  rgb16 = (rgb.astype(np.uint16) * 257)  # Exactly `rgb` once converted to 8 bits.
  (tmp_path / "rgb16.png").write_bytes(tf.io.encode_png(rgb16).numpy())
  Image.fromarray(gray[..., 0]).save(tmp_path / "gray.png")
  Image.fromarray(bmp).save(tmp_path / "image.bmp")
  Image.fromarray(plain).save(tmp_path / "plain.png")
  (tmp_path / "empty.png").write_bytes(b"")
  expected = [rgb, np.repeat(gray, 3, axis=-1), bmp, plain]
  config = _config(f"folder:{tmp_path}", use_flip=False, use_rot=False)
  config.batch_size = len(expected)  # One epoch per step.
  batches = _batches(config, 2)
  _assert_same(_batches(_config(config.data.train, use_flip=False, use_rot=False, cache=True),
                        2), batches)
  for batch in batches:
    found = [_locate(_to_uint8(hr), expected) for hr in batch["hr"]]
    assert sorted(k for (k, _, _, _), in found) == list(range(len(expected)))


def test_config_errors(hr_folder):
  with pytest.raises(ValueError, match="not divisible by the 3 processes"):
    input_pipeline.create_train_iter(_config(f"folder:{hr_folder[0]}"), process_count=3)
  with pytest.raises(ValueError, match="No usable image"):  # All images smaller than gt_size.
    input_pipeline.create_train_iter(_config(f"folder:{hr_folder[0]}", gt_size=40))


@pytest.mark.numerics
def test_eval_images_and_pairs(tmp_path, caplog):
  images = _random_images(5, [(27, 25), (17, 18), (16, 16)])
  names = ["b", "a", "c/d"]
  for name, image in zip(names, images):
    os.makedirs(os.path.dirname(tmp_path / f"{name}.png"), exist_ok=True)
    Image.fromarray(image).save(tmp_path / f"{name}.png")
  (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
  with caplog.at_level(logging.WARNING):
    loaded = input_pipeline.load_eval_images(f"folder:{tmp_path}")
  assert any("broken.png" in r.getMessage() for r in caplog.records)
  assert [image.name for image in loaded] == ["a", "b", "c/d"]
  for name, image, grayscale in loaded:
    np.testing.assert_array_equal(image, images[names.index(name)])
    assert not grayscale
  bare = input_pipeline.load_eval_images(str(tmp_path))
  assert [image.name for image in bare] == ["a", "b", "c/d"]

  hr = images[0]
  for scale in (2, 3, 4):
    lr, hr_crop = input_pipeline.make_eval_pair(hr, scale)
    height, width = 27 - 27 % scale, 25 - 25 % scale
    np.testing.assert_array_equal(hr_crop, hr[:height, :width])
    assert lr.dtype == np.float32 and lr.shape == (height // scale, width // scale, 3)
    _assert_bicubic_lr(lr, hr_crop / 255.0, scale, quantize=True)
    lr_float, _ = input_pipeline.make_eval_pair(hr, scale, quantize=False)
    _assert_bicubic_lr(lr_float, hr_crop / 255.0, scale, quantize=False)
  with pytest.raises(ValueError, match="use folder:<hr_dir>"):
    input_pipeline.load_eval_images(f"paired:{tmp_path}:{tmp_path}")


@pytest.mark.numerics
def test_make_lr_runs_in_graph_with_unknown_sizes():
  make = tf.function(lambda hr: input_pipeline.make_lr(hr, 4, quantize=True),
                     input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])
  lr = make(tf.fill([16, 20, 3], 0.5)).numpy()
  assert lr.shape == (4, 5, 3)
  # 8-bit levels; 0.5 is 127.5 levels, a rounding tie: float32 rounding of the resize may put
  # it on either side.
  levels = lr * 255
  utils.assert_close(levels, np.round(levels), magnitude=255)
  assert set(np.unique(np.round(levels))) <= {127.0, 128.0}
