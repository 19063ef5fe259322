"""Tests for jaxsr.data.realworld_input: HR crops for the degradations (Real-ESRGAN dataset)."""

import collections
import itertools
import logging

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxsr import config_base
from jaxsr.data import input_pipeline
from jaxsr.data import realworld_input
from tests import test_sources
from tests import utils

CROP = 32  # data.crop_pad_size
GT_SIZE = 16
# (H, W): padded rows and columns, padded rows, cropped, padded columns, cropped.
SHAPES = [(16, 18), (20, 40), (40, 50), (45, 17), (33, 36)]


def _random_images(seed, shapes):
  """Random pixels: a window of one of them is found at exactly one place."""
  rng = np.random.default_rng(seed)
  return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


def _save_folder(folder, images):
  for k, image in enumerate(images):
    Image.fromarray(image).save(folder / f"img{k}.png")
  return str(folder)


@pytest.fixture(scope="module")
def hr_folder(tmp_path_factory):
  """Folder of random images of SHAPES, plus `tiny.png` (10x40, skipped) -> (path, images)."""
  folder = tmp_path_factory.mktemp("hr")
  images = _random_images(1, SHAPES)
  Image.fromarray(_random_images(2, [(10, 40)])[0]).save(folder / "tiny.png")
  return _save_folder(folder, images), images


def _config(train, **data):
  config = config_base.realworld_config()
  config.seed = 3
  config.batch_size = 4
  config.data.update(dict(train=train, gt_size=GT_SIZE, crop_pad_size=CROP, prefetch=1))
  config.data.update(data)
  return config


def _batches(config, num, **kwargs):
  return list(itertools.islice(input_pipeline.create_train_iter(config, **kwargs), num))


def _patches(config, num_steps):
  return [hr for batch in _batches(config, num_steps) for hr in batch["hr"]]


def _assert_same(batches_a, batches_b):
  assert len(batches_a) == len(batches_b)
  for a, b in zip(batches_a, batches_b):
    assert set(a) == set(b) == {"hr"}
    np.testing.assert_array_equal(a["hr"], b["hr"])


def _pad(image, size):
  """Real-ESRGAN's padding: bottom/right, cv2.BORDER_REFLECT_101 (= np.pad 'reflect')."""
  height, width = image.shape[:2]
  return np.pad(image, ((0, max(0, size - height)), (0, max(0, size - width)), (0, 0)),
                mode="reflect")


def _windows(patch, image):
  """[(top, left)] where the padded `image` has `patch` ([P, P, 3]) as a window."""
  size = patch.shape[0]
  padded = _pad(image, size)
  starts = sliding_window_view(padded, (1, 4, 3))[:, :, 0]  # Match the first 4 pixels ...
  tops, lefts = np.nonzero((starts == patch[:1, :4]).all(axis=(2, 3, 4)))
  return [(int(t), int(l)) for t, l in zip(tops, lefts)  # ... then the whole window.
          if np.array_equal(padded[t:t + size, l:l + size], patch)]


def _locate(patch, candidates):
  """[(name, top, left)] of every window of the padded `candidates` {name: image} = patch."""
  return [(name, *w) for name, image in candidates.items() for w in _windows(patch, image)]


def _augmented(image, hflip, vflip=False, transpose=False):
  """BasicSR `augment` (hflip, then vflip, then transpose)."""
  if hflip:
    image = image[:, ::-1]
  if vflip:
    image = image[::-1]
  return image.transpose(1, 0, 2) if transpose else image


def test_batches_are_deterministic_resumable_and_split_over_processes(hr_folder):
  config = _config(f"folder:{hr_folder[0]}", use_rot=True, multiscale_factors=(1.0, 0.75, 0.5),
                   multiscale_shortest_edge=24)
  reference = _batches(config, 4)
  for batch in reference:
    assert set(batch) == {"hr"}
    assert batch["hr"].dtype == np.uint8 and batch["hr"].shape == (4, CROP, CROP, 3)
  _assert_same(_batches(config, 4), reference)
  _assert_same(_batches(_config(config.data.train, use_rot=True, cache=True,
                                multiscale_factors=(1.0, 0.75, 0.5),
                                multiscale_shortest_edge=24), 4), reference)
  # A run resumed at step 2 yields what the uninterrupted one did from there.
  _assert_same(_batches(config, 2, start_step=input_pipeline.input_state(2)["next_step"]),
               reference[2:])
  # Processes 0 and 1 of 2 take the two halves of each global batch.
  parts = [_batches(config, 3, start_step=1, process_index=p, process_count=2) for p in (0, 1)]
  for step in range(3):
    assert parts[0][step]["hr"].shape == (2, CROP, CROP, 3)
    merged = np.concatenate([parts[0][step]["hr"], parts[1][step]["hr"]])
    _assert_same([{"hr": merged}], [reference[1 + step]])
  config.seed = 4
  other = _batches(config, 4)
  for a, b in zip(other, reference):
    assert not np.array_equal(a["hr"], b["hr"])


def test_crops_and_reflect_101_pads_of_every_image_once_per_epoch(hr_folder, caplog):
  folder, images = hr_folder
  config = _config(f"folder:{folder}", use_flip=False)
  config.batch_size = len(images)  # One epoch per step.
  with caplog.at_level(logging.WARNING):
    batches = _batches(config, 8)
  assert any("tiny.png" in r.getMessage() and "smaller than the 16x16" in r.getMessage()
             for r in caplog.records)
  offsets = collections.defaultdict(set)
  for batch in batches:
    found = [_locate(hr, dict(enumerate(images))) for hr in batch["hr"]]
    assert all(len(f) == 1 for f in found)  # A window of exactly one padded image.
    assert sorted(k for (k, _, _), in found) == list(range(len(images)))
    for (k, top, left), in found:
      offsets[k].add((top, left))
  # Padded sides start at 0; the others are cropped at varying offsets.
  assert offsets[0] == {(0, 0)}
  assert {top for top, _ in offsets[1]} == {0} and len(offsets[1]) > 1
  assert {left for _, left in offsets[3]} == {0} and len(offsets[3]) > 1
  assert len(offsets[2]) > 1 and len({top for top, _ in offsets[2]}) > 1


@pytest.mark.parametrize("shape", [(3, 5), (1, 4), (5, 40), (12, 12)])
def test_crop_or_pad_repeats_the_reflection_like_cv2(shape):
  image = _random_images(3, [shape])[0]
  for seed in range(4):
    out = realworld_input.crop_or_pad(tf.constant(image), 12, tf.constant([seed, 7], tf.int64))
    assert out.shape == (12, 12, 3)
    (top, left), = _windows(out.numpy(), image)
    assert top == 0 and (left == 0 or shape[1] > 12)


@pytest.mark.parametrize("use_rot", [False, True])
def test_flips_come_before_the_pad_about_half_the_time(tmp_path, use_rot):
  images = _random_images(4, [(48, 56), (56, 20)])  # (56, 20): the pad is at the right.
  config = _config("folder:" + _save_folder(tmp_path, images), use_rot=use_rot)
  config.batch_size = 8
  transforms = list(itertools.product((False, True), repeat=3 if use_rot else 1))
  candidates = {(k, t): _augmented(image, *t) for k, image in enumerate(images)
                for t in transforms}
  seen = collections.Counter()
  for hr in _patches(config, 25):
    (name, _, _), = _locate(hr, candidates)  # Flipped, then padded / cropped.
    seen[name[1]] += 1
  assert set(seen) == set(transforms)
  assert 0.38 < sum(n for t, n in seen.items() if t[0]) / 200 < 0.62  # hflip.
  if use_rot:
    assert 0.38 < sum(n for t, n in seen.items() if t[2]) / 200 < 0.62  # transpose.


def test_multiscale_sizes_are_those_of_generate_multiscale_df2k():
  sizes = realworld_input.multiscale_sizes
  assert sizes(1356, 2040, (0.75, 0.5, 1 / 3), 400) == [(1017, 1530), (678, 1020), (452, 680),
                                                       (400, 601)]
  assert sizes(2040, 1356, (1.0,), 400) == [(2040, 1356), (601, 400)]
  assert sizes(500, 500, (), 400) == [(400, 400)]
  assert sizes(333, 301, (1 / 3,)) == [(111, 100)]  # int() truncates.
  assert sizes(3, 5, (0.25,)) == [(1, 1)]


def test_random_version_draws_each_size_uniformly_with_pil_lanczos():
  image = utils.smooth_image(np.random.default_rng(5), 48, 60)
  sizes = realworld_input.multiscale_sizes(48, 60, (1.0, 0.75, 0.5), 40)
  assert sizes == [(48, 60), (36, 45), (24, 30), (40, 50)]
  draw = tf.function(lambda key: realworld_input.random_version(image, tf.constant(sizes), key))
  counts = collections.Counter()
  for seed in range(120):
    version = draw(tf.constant([seed, 1], tf.int64)).numpy()
    counts[version.shape[:2]] += 1
    if version.shape[:2] == image.shape[:2]:
      np.testing.assert_array_equal(version, image)  # Factor 1.0: the image itself.
    else:
      pil = np.asarray(Image.fromarray(image).resize(version.shape[1::-1], Image.LANCZOS))
      # PIL rounds and clips between its two passes (overshoot at sharp edges): mean ~0.17
      # level; bicubic, Lanczos-5 or no antialiasing differ by 0.48 to 2.4.
      assert np.abs(version.astype(int) - pil).mean() < 0.3
  assert set(counts) == set(sizes) and min(counts.values()) >= 15  # 30 expected.


def test_pipeline_crops_a_drawn_version_of_the_image(tmp_path):
  image, = _random_images(6, [(40, 48)])
  config = _config("folder:" + _save_folder(tmp_path, [image]), use_flip=False,
                   multiscale_factors=(1.0, 0.75, 0.5), multiscale_shortest_edge=24)
  config.batch_size = 8
  sizes = realworld_input.multiscale_sizes(40, 48, (1.0, 0.75, 0.5), 24)
  assert sizes == [(40, 48), (30, 36), (20, 24), (24, 28)]  # Cropped, then padded.
  versions = {size: realworld_input.lanczos_resize(image, size).numpy() for size in sizes}
  counts = collections.Counter()
  for hr in _patches(config, 8):
    (size, _, _), = _locate(hr, versions)
    counts[size] += 1
  assert set(counts) == set(sizes) and min(counts.values()) >= 5  # 16 expected.


def test_tfds_pairs_give_their_hr_images(tmp_path):
  data_dir = str(tmp_path)
  tfds.disable_progress_bar()
  test_sources.JaxsrTestPairs(data_dir=data_dir).download_and_prepare()
  config = _config("tfds:jaxsr_test_pairs", data_dir=data_dir, use_flip=False)
  config.batch_size = 3  # One epoch per step; the third pair's LR has a wrong size.
  hr_images = dict(enumerate(test_sources._TFDS_HR))  # pylint: disable=protected-access
  for batch in _batches(config, 2):
    found = [_locate(hr, hr_images) for hr in batch["hr"]]
    assert sorted(k for (k, _, _), in found) == [0, 1, 2]


def test_paired_spec_fails_first_with_a_clear_message():
  config = _config("paired:/no/such/lr:/no/such/hr")
  with pytest.raises(ValueError, match=r"Paired LR/HR fine-tuning uses a config without "
                                       r"`degradation`"):
    input_pipeline.create_train_iter(config)
