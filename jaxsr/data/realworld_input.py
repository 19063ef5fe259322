"""HR crops for Real-ESRGAN-style training: the degradations make the LR on the device.

Per example i (Real-ESRGAN `RealESRGANDataset.__getitem__`), every draw stateless in (seed, i)
like `input_pipeline` (same image order, same global-index / process-slice batches and resume):
  1. image: position i % N of the permutation of epoch i // N (`input_pipeline`);
  2. multi-scale GT (`data.multiscale_factors` non-empty): one version drawn uniformly from
     `multiscale_sizes` (the images `generate_multiscale_DF2K.py` writes: each factor, plus the
     one whose shortest edge is `data.multiscale_shortest_edge` if > 0), made on the fly by
     antialiased Lanczos-3 (PIL LANCZOS to ~0.2 level on average: PIL rounds between its
     passes); a version of the image's own size (factor 1.0) is the image itself;
  3. BasicSR `augment` of the whole image: hflip (`use_flip`), vflip + transpose (`use_rot`);
  4. crop or pad to P = `data.crop_pad_size`: reflect-101 padding (cv2.BORDER_REFLECT_101,
     repeated for sides < P / 2) at the bottom/right up to P, then a uniform P x P crop.
Batches are {'hr': uint8 `[b, P, P, 3]`} (uint8: 4x less host-to-device traffic than float32).
"""

from typing import Callable, Dict, List, Sequence, Tuple

import ml_collections
import tensorflow as tf

from jaxsr.data import input_pipeline as pipeline
from jaxsr.data import sources

# pylint: disable=protected-access  # The shared per-example helpers of input_pipeline.


def load_hr_source(config: ml_collections.ConfigDict) -> sources.Source:
  """The HR images of `config.data.train` (folder: or tfds:, whose `hr` feature is used).

  Images with a side < `data.gt_size` are skipped with a warning; larger ones smaller than
  `data.crop_pad_size` are padded by the pipeline.

  Raises:
    ValueError: a `paired:` spec (LR comes from the degradations), bad spec, no usable image.
  """
  spec = config.data.train
  if sources.parse_spec(spec)[0] == "paired":
    raise ValueError(
        f"data.train='{spec}': a config with `degradation` trains on HR images only (its LR is "
        "made by the degradations); use folder:<hr_dir> or tfds:<name>. Paired LR/HR "
        "fine-tuning uses a config without `degradation` (like configs/msrresnet_x4.py).")
  return sources.load_source(spec, min_hr_size=config.data.gt_size,
                             data_dir=config.data.data_dir, hr_only=True)


def multiscale_sizes(height: int, width: int, factors: Sequence[float],
                     shortest_edge: int = 0) -> List[Tuple[int, int]]:
  """(H, W) of the multi-scale versions of an H x W image, as generate_multiscale_DF2K.py.

  Each factor f gives (int(H * f), int(W * f)); `shortest_edge` E > 0 adds the version whose
  shortest side is E, the other int(E * long / short). Sides are at least 1.
  """
  sizes = [(int(height * f), int(width * f)) for f in factors]
  if shortest_edge > 0:
    if width < height:
      sizes.append((int(shortest_edge * (height / width)), shortest_edge))
    else:
      sizes.append((shortest_edge, int(shortest_edge * (width / height))))
  return [(max(h, 1), max(w, 1)) for h, w in sizes]


def example_fn(config: ml_collections.ConfigDict,
               source: sources.Source) -> Callable[[tf.Tensor], Dict[str, tf.Tensor]]:
  """Returns `example(i)` -> {'hr': uint8 `[P, P, 3]`}, a pure function of (config.seed, i)."""
  data = config.data
  read = pipeline._image_reader(source.hr, data.cache)
  factors = tuple(data.multiscale_factors)
  versions = None
  if factors:  # [N, V, 2] (H, W) of the V versions of each image.
    versions = tf.constant([multiscale_sizes(e.height, e.width, factors,
                                             data.multiscale_shortest_edge)
                            for e in source.hr], tf.int32)
  num_images, seed, size = len(source.hr), config.seed, data.crop_pad_size

  def example(index):
    image_index = pipeline._shuffled_image_index(index, num_images, seed)
    version_key, augment_key, crop_key = pipeline._example_keys(index, seed, 3)
    image = read(image_index)
    if versions is not None:
      image = random_version(image, tf.gather(versions, image_index), version_key)
    image = pipeline._augment(image, pipeline._random_flips(augment_key), data.use_flip,
                              data.use_rot)
    return {"hr": tf.ensure_shape(crop_or_pad(image, size, crop_key), [size, size, 3])}

  return example


def random_version(image: tf.Tensor, sizes: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
  """uint8 `[H, W, 3]` -> one of the V versions `sizes` int32 `[V, 2]`, drawn uniformly by `key`.

  Returns:
    uint8 `[h, w, 3]`: `image` resized to the drawn (h, w) by `lanczos_resize` (as is if the
    size is its own).
  """
  version = tf.random.stateless_uniform([], key, minval=0, maxval=tf.shape(sizes)[0],
                                        dtype=tf.int32, alg=pipeline._RNG_ALG)
  size = sizes[version]
  return tf.cond(tf.reduce_all(size == tf.shape(image)[:2]), lambda: image,
                 lambda: lanczos_resize(image, size))


def lanczos_resize(image: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
  """uint8 `[H, W, C]` -> uint8 `[h, w, C]` by antialiased Lanczos-3, rounded to 8-bit levels."""
  resized = tf.image.resize(tf.cast(image, tf.float32), size, method="lanczos3", antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def crop_or_pad(image: tf.Tensor, size: int, key: tf.Tensor) -> tf.Tensor:
  """Real-ESRGAN's crop/pad of `[H, W, C]` to `[size, size, C]` (P = size).

  Sides < P are first padded at the bottom/right to P with reflect-101 (cv2.BORDER_REFLECT_101,
  np.pad 'reflect'; repeated as cv2 does when a side < P / 2), then a P x P window is cropped
  at a uniform offset (drawn by `key`) of the padded max(H, P) x max(W, P) image. The padded
  image is never built: the window's rows and columns are gathered from `image`.
  """
  shape = tf.shape(image)
  top, left = crop_offsets(shape, size, key)
  rows = _reflect_101(top + tf.range(size), shape[0])
  cols = _reflect_101(left + tf.range(size), shape[1])
  return tf.gather(tf.gather(image, rows, axis=0), cols, axis=1)


def crop_offsets(shape: tf.Tensor, size: int, key: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """(top, left) of `crop_or_pad`'s window for an image of `shape` [H, W, C]: uniform in the
  image padded (bottom/right) to at least `size` x `size`."""
  padded = tf.concat([tf.maximum(shape[:2], size), shape[2:]], 0)
  return pipeline._random_offsets(padded, size, key)


def _reflect_101(indices: tf.Tensor, length: tf.Tensor) -> tf.Tensor:
  """Indices >= 0 into a reflect-101 extension of a side `length` -> indices in [0, length).

  The extension ...| 0 1 .. n-1 | n-2 .. 1 | 0 1 .. is periodic with period 2 (n - 1).
  """
  period = tf.maximum(2 * (length - 1), 1)
  position = indices % period
  return tf.where(position < length, position, period - position)
