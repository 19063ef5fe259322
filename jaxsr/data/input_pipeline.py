"""tf.data training pipeline (deterministic and resumable by construction) and eval images.

Every training example has a global index i; step s uses the global batch
i in [s * B, (s + 1) * B) and process p of P takes the contiguous slice
[s * B + p * b, s * B + (p + 1) * b), b = B / P. Everything random about example i is a pure
function of (config.seed, i):
  - image: position i % N of a stateless permutation of the N images keyed by (seed, i // N);
  - crop offsets, flips and 90-degree rotation: stateless draws keyed by (seed, i).
So the input position is a pure function of the step (`input_state`): a resumed run builds its
pipeline from `start_step` and yields exactly the batches the uninterrupted run would have.

Per example: read image -> random GT crop (paired data: LR crop and the aligned HR crop) ->
LR = MATLAB bicubic(HR, 1/scale), rounded to 8-bit levels if `config.data.quantize_lr` ->
the same flips/transpose on LR and HR (BasicSR `augment`: hflip; vflip + transpose for rot).
Real-world configs (`config_base.is_realworld`) yield HR crops only, with the same indexing, for
the degradations to make LR on the device (`realworld_input`).
"""

import os
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from absl import logging
import ml_collections
import numpy as np
import tensorflow as tf

from jaxsr import config_base
from jaxsr import metrics
from jaxsr.data import sources
from jaxsr.data.imresize_tf import imresize_tf

_PERMUTATION_STREAM = 0  # Seed streams: image order per epoch ...
_EXAMPLE_STREAM = 1  # ... and crops / augmentations per example.
_RNG_ALG = "philox"
_MAX_STEPS = 2**40

Reader = Callable[[tf.Tensor], tf.Tensor]  # image index -> uint8 [H, W, 3]


def input_state(step: int) -> Dict[str, int]:
  """The input position to checkpoint after `step` steps: the pipeline depends on nothing else."""
  return {"next_step": int(step)}


def create_train_iter(config: ml_collections.ConfigDict, start_step: int = 0,
                      process_index: int = 0,
                      process_count: int = 1) -> Iterator[Dict[str, np.ndarray]]:
  """Batches for steps start_step, start_step + 1, ... of this process (host-local numpy).

  Yields:
    {'lr': float32 `[b, g/s, g/s, 3]`, 'hr': float32 `[b, g, g, 3]`}, both in [0, 1], where
    b = config.batch_size // process_count, g = config.data.gt_size, s = config.scale.
    Real-world configs: {'hr': uint8 `[b, P, P, 3]`}, P = config.data.crop_pad_size
    (`realworld_input`).
  """
  source = load_train_source(config)
  dataset = create_train_dataset(config, source, start_step, process_index, process_count)
  return dataset.as_numpy_iterator()


def load_train_source(config: ml_collections.ConfigDict) -> sources.Source:
  """Checks the images of `config.data.train` (before anything compiles) and logs the summary."""
  if config_base.is_realworld(config):
    from jaxsr.data import realworld_input  # pylint: disable=g-import-not-at-top  # Imports us.
    source = realworld_input.load_hr_source(config)
  else:
    source = sources.load_source(config.data.train, scale=config.scale,
                                 min_hr_size=config.data.gt_size, data_dir=config.data.data_dir)
  logging.info("Training data %s: %s", config.data.train, source.summary)
  return source


def create_train_dataset(config: ml_collections.ConfigDict, source: sources.Source,
                         start_step: int = 0, process_index: int = 0,
                         process_count: int = 1) -> tf.data.Dataset:
  """The tf.data pipeline of `create_train_iter` for an already loaded `source`."""
  global_batch = config.batch_size
  if global_batch % process_count:
    raise ValueError(f"batch_size={global_batch} is not divisible by the {process_count} "
                     "processes.")
  local_batch = global_batch // process_count
  if config_base.is_realworld(config):
    from jaxsr.data import realworld_input  # pylint: disable=g-import-not-at-top  # Imports us.
    make_example = realworld_input.example_fn(config, source)
  else:
    scale, gt_size = config.scale, config.data.gt_size
    if gt_size % scale:
      raise ValueError(f"data.gt_size={gt_size} is not a multiple of scale={scale}.")
    read_hr = _image_reader(source.hr, config.data.cache)
    read_lr = None if source.lr is None else _image_reader(source.lr, config.data.cache)
    make_example = _example_fn(
        read_hr, read_lr, len(source.hr), seed=config.seed, scale=scale, gt_size=gt_size,
        use_flip=config.data.use_flip, use_rot=config.data.use_rot,
        quantize_lr=config.data.quantize_lr)

  first = process_index * local_batch
  steps = tf.data.Dataset.range(start_step, _MAX_STEPS)
  indices = steps.flat_map(lambda s: tf.data.Dataset.range(
      s * global_batch + first, s * global_batch + first + local_batch))
  # No autograph: the example function has no tensor-dependent Python control flow, and
  # converting it costs seconds at every pipeline start.
  dataset = indices.map(tf.autograph.experimental.do_not_convert(make_example),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  dataset = dataset.batch(local_batch, drop_remainder=True)
  dataset = dataset.prefetch(config.data.prefetch)
  options = tf.data.Options()
  options.deterministic = True
  options.threading.max_intra_op_parallelism = 1
  return dataset.with_options(options)


def make_lr(hr: tf.Tensor, scale: int, quantize: bool) -> tf.Tensor:
  """HR float32 `[H, W, 3]` in [0, 1] -> LR `[H/s, W/s, 3]` by MATLAB bicubic, clipped to [0, 1].

  quantize: round to 8-bit levels (k / 255), as LR PNGs are.
  """
  lr = tf.clip_by_value(imresize_tf(hr, 1.0 / scale), 0.0, 1.0)
  return tf.round(lr * 255.0) / 255.0 if quantize else lr


# --- Per-example transforms ---------------------------------------------------------------------


def _example_fn(read_hr: Reader, read_lr: Optional[Reader], num_images: int, *, seed: int,
                scale: int, gt_size: int, use_flip: bool, use_rot: bool,
                quantize_lr: bool) -> Callable[[tf.Tensor], Dict[str, tf.Tensor]]:
  """Returns `example(i)` -> {'lr', 'hr'} float32 patches in [0, 1], a pure function of i."""
  lr_size = gt_size // scale

  def example(index):
    image_index = _shuffled_image_index(index, num_images, seed)
    crop_key, augment_key = _example_keys(index, seed, 2)
    if read_lr is None:
      hr_image = read_hr(image_index)
      top, left = _random_offsets(tf.shape(hr_image), gt_size, crop_key)
      hr = _to_float(hr_image[top:top + gt_size, left:left + gt_size])
      lr = make_lr(hr, scale, quantize_lr)
    else:
      lr_image = read_lr(image_index)
      top, left = _random_offsets(tf.shape(lr_image), lr_size, crop_key)
      lr = _to_float(lr_image[top:top + lr_size, left:left + lr_size])
      hr = _to_float(read_hr(image_index)[top * scale:top * scale + gt_size,
                                          left * scale:left * scale + gt_size])
    flips = _random_flips(augment_key)
    lr = tf.ensure_shape(_augment(lr, flips, use_flip, use_rot), [lr_size, lr_size, 3])
    hr = tf.ensure_shape(_augment(hr, flips, use_flip, use_rot), [gt_size, gt_size, 3])
    return {"lr": lr, "hr": hr}

  return example


def _shuffled_image_index(index: tf.Tensor, num_images: int, seed: int) -> tf.Tensor:
  """Example index i -> image at position i % N of the permutation of epoch i // N."""
  epoch_key = tf.random.experimental.stateless_fold_in(
      tf.constant([seed, _PERMUTATION_STREAM], tf.int64), index // num_images, alg=_RNG_ALG)
  return tf.random.experimental.index_shuffle(
      index % num_images, epoch_key, tf.constant(num_images - 1, tf.int64))


def _example_keys(index: tf.Tensor, seed: int, num: int) -> List[tf.Tensor]:
  """`num` independent stateless keys (int64 `[2]`) of example `index`: pure in (seed, i)."""
  key = tf.random.experimental.stateless_fold_in(
      tf.constant([seed, _EXAMPLE_STREAM], tf.int64), index, alg=_RNG_ALG)
  return tf.unstack(tf.random.experimental.stateless_split(key, num, alg=_RNG_ALG), num=num)


def _random_flips(key: tf.Tensor) -> tf.Tensor:
  """bool `[3]`, each True with probability 0.5: the `flips` of `_augment`."""
  return tf.random.stateless_uniform([3], key, alg=_RNG_ALG) < 0.5


def _random_offsets(shape: tf.Tensor, size: int, key: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Uniform top/left of a `size` crop inside an image of `shape` [H, W, C]."""
  keys = tf.random.experimental.stateless_split(key, 2, alg=_RNG_ALG)
  return tuple(
      tf.random.stateless_uniform([], seed=keys[axis], minval=0, maxval=shape[axis] - size + 1,
                                  dtype=tf.int32, alg=_RNG_ALG) for axis in (0, 1))


def _augment(image: tf.Tensor, flips: tf.Tensor, use_flip: bool, use_rot: bool) -> tf.Tensor:
  """BasicSR `augment`: hflip if flips[0]; with rot, vflip if flips[1], transpose if flips[2]."""
  if use_flip:
    image = tf.cond(flips[0], lambda: tf.reverse(image, [1]), lambda: image)
  if use_rot:
    image = tf.cond(flips[1], lambda: tf.reverse(image, [0]), lambda: image)
    image = tf.cond(flips[2], lambda: tf.transpose(image, [1, 0, 2]), lambda: image)
  return image


def _to_float(image: tf.Tensor) -> tf.Tensor:
  return tf.cast(image, tf.float32) / 255.0


# --- Reading images -----------------------------------------------------------------------------


def _image_reader(entries: Sequence[sources.ImageEntry], cache: bool) -> Reader:
  """`read(k)` -> uint8 `[H, W, 3]` of entries[k]; decoded once into memory if `cache`."""
  read = _encoded_reader(entries)
  return _cached_reader(entries, read) if cache else read


def _encoded_reader(entries: Sequence[sources.ImageEntry]) -> Reader:
  """Decodes entries[k] from its in-memory bytes, else from its file, on every read."""
  paths = tf.constant([e.path for e in entries], tf.string)
  data = tf.constant([e.data for e in entries], tf.string)
  if all(e.data for e in entries):
    return lambda k: sources.decode_image(tf.gather(data, k))
  if not any(e.data for e in entries):
    return lambda k: sources.decode_image(tf.io.read_file(tf.gather(paths, k)))

  def read(k):
    inline = tf.gather(data, k)
    encoded = tf.cond(tf.strings.length(inline) > 0, lambda: inline,
                      lambda: tf.io.read_file(tf.gather(paths, k)))
    return sources.decode_image(encoded)

  return read


def _cached_reader(entries: Sequence[sources.ImageEntry], read: Reader) -> Reader:
  """Decodes every entry once into one flat uint8 buffer; `read(k)` slices image k out of it."""
  shapes = np.array([[e.height, e.width, 3] for e in entries], np.int64)
  sizes = shapes.prod(axis=1)
  offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
  flat = np.empty(int(sizes.sum()), np.uint8)
  decoded = tf.data.Dataset.range(len(entries)).map(
      tf.autograph.experimental.do_not_convert(read), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  for k, image in enumerate(decoded.as_numpy_iterator()):
    flat[offsets[k]:offsets[k] + sizes[k]] = image.reshape(-1)
  logging.info("Cached %d decoded images (%.1f MiB).", len(entries), flat.nbytes / 2**20)
  flat, shapes, offsets = tf.constant(flat), tf.constant(shapes), tf.constant(offsets)
  return lambda k: tf.reshape(tf.slice(flat, [offsets[k]], [tf.reduce_prod(shapes[k])]),
                              shapes[k])


# --- Evaluation ---------------------------------------------------------------------------------


class EvalImage(NamedTuple):
  """An evaluation HR image: `hr` uint8 `[H, W, 3]`; `grayscale` if the file is single-channel."""
  name: str
  hr: np.ndarray
  grayscale: bool


def min_eval_size(scale: int) -> int:
  """Smallest HR side that evaluates at `scale`: mod-cropped to the scale, less the `scale`
  pixels of border that PSNR/SSIM crop on each side, it still holds SSIM's window."""
  window = metrics._SSIM_WINDOW_SIZE  # pylint: disable=protected-access
  return -(-(window + 2 * scale) // scale) * scale


def load_eval_images(spec: str, data_dir: str = "",
                     scale: Optional[int] = None) -> List[EvalImage]:
  """`folder:` or `tfds:` spec -> [EvalImage(name without extension, HR, grayscale)] by name.

  A spec without a `kind:` prefix is a folder if one exists there, else a tfds name. Bad files
  are skipped or converted as for training (`sources.load_source`), and so are images over
  PIL's decompression-bomb limit (~89 Mpixels: making the LR of a 100-Mpixel image alone takes
  a minute) and, given the `scale`, images smaller than `min_eval_size(scale)`; tfds datasets
  use their test split, else validation, else train, unless the spec names one.
  """
  if spec.partition(":")[0] not in sources.SPEC_KINDS:
    spec = ("folder:" if os.path.isdir(spec) else "tfds:") + spec
  kind, _ = sources.parse_spec(spec)
  if kind == "paired":
    raise ValueError(f"Eval spec '{spec}': use folder:<hr_dir> (LR is made by bicubic).")
  min_size = min_eval_size(scale) if scale else 1
  source = sources.load_source(spec, data_dir=data_dir, hr_only=True,
                               default_splits=("test", "validation", "train"),
                               min_hr_size=min_size,
                               min_size_what=f"minimum to evaluate at x{scale}",
                               max_pixels=None)
  logging.info("Eval data %s: %s", spec, source.summary)
  names = [os.path.splitext(e.name)[0] if kind == "folder" else e.name for e in source.hr]
  images = [EvalImage(name, hr, entry.grayscale)
            for name, hr, entry in zip(names, sources.read_images(source.hr), source.hr)]
  return sorted(images, key=lambda image: image.name)


def make_eval_pair(hr: np.ndarray, scale: int,
                   quantize: bool = True) -> Tuple[np.ndarray, np.ndarray]:
  """HR uint8 `[H, W, 3]` -> (LR float32 `[H/s, W/s, 3]` in [0, 1], HR uint8 mod-cropped to s).

  LR is MATLAB bicubic of the mod-cropped HR, rounded to 8-bit levels when `quantize` (as the
  LR PNGs of benchmark sets are).
  """
  height, width = hr.shape[0] - hr.shape[0] % scale, hr.shape[1] - hr.shape[1] % scale
  hr = hr[:height, :width]
  lr = make_lr(tf.constant(hr, tf.float32) / 255.0, scale, quantize)
  return lr.numpy(), hr
