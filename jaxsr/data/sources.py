"""Image sources: `folder:`, `paired:` and `tfds:` specs -> checked lists of decodable images.

A spec names where images come from:
  folder:<dir>              HR images (recursive: .png .jpg .jpeg .bmp), sorted by relative path.
  paired:<lr_dir>:<hr_dir>  LR/HR pairs matched by relative path without extension; an LR name
                            may end in `x<scale>` (DIV2K: `0001x4.png` pairs with `0001.png`).
  tfds:<name>[:<split>]     a prepared tensorflow-datasets dataset; features `hr` + `lr` -> pairs,
                            a single `hr` or `image` feature -> HR images.

Every image is checked on the host before anything is compiled (`load_source`):
  - empty, unreadable (permission, dangling symlink, symlink loop, not a regular file), corrupt
    or truncated files, and images smaller than the training patch, are skipped with a warning
    naming the file and the reason (folders: files without an image extension are named in one
    warning; a folder reached again through a symlink is listed once);
  - 16-bit, grayscale, palette, RGBA (alpha dropped, like cv2.IMREAD_COLOR) and CMYK images, and
    formats other than PNG/JPEG, are converted once to 8-bit RGB PNG kept in memory (a warning
    names each content conversion).
An image that passes the check is decoded by the same op (`decode_image`) the tf.data pipeline
uses, so the pipeline never meets an image it cannot decode.

tfds examples are read once and their encoded images kept in host memory (about the size of
the prepared files: DIV2K train HR is ~3.5 GB), which gives the pipeline random access.
"""

import concurrent.futures
import dataclasses
import io
import os
import re
from typing import List, NamedTuple, Optional, Sequence, Tuple
import warnings

from absl import logging
import numpy as np
from PIL import Image
import tensorflow as tf

from jaxsr import image_io
from jaxsr.data_spec import SPEC_KINDS, parse_spec  # noqa: F401  (sources.* for callers)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")

_PNG_COLOR_TYPES = {0: "grayscale", 2: "RGB", 3: "palette", 4: "grayscale+alpha", 6: "RGBA"}
_PIL_MODE_NAMES = {"1": "1-bit", "L": "grayscale", "LA": "grayscale+alpha", "P": "palette",
                   "PA": "palette+alpha", "RGBA": "RGBA", "RGBX": "RGBX", "CMYK": "CMYK",
                   "YCbCr": "YCbCr", "I": "32-bit integer", "I;16": "16-bit grayscale",
                   "I;16B": "16-bit grayscale", "I;16L": "16-bit grayscale",
                   "I;16N": "16-bit grayscale"}
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N")
_MAX_SCAN_THREADS = 16
_MAX_NAMED = 10  # Files named in the warning about files without an image extension.


@dataclasses.dataclass(frozen=True)
class ImageEntry:
  """One usable image: encoded 8-bit RGB in `data` if non-empty, else the file at `path`."""
  name: str  # Relative path (folders) or example name (tfds), for messages and eval names.
  path: str
  data: bytes
  height: int
  width: int
  grayscale: bool = False  # The file itself is single-channel (converted to RGB here).


@dataclasses.dataclass(frozen=True)
class Summary:
  """What the host-side check did: usable examples, converted images, skipped files or pairs."""
  kept: int
  converted: int
  skipped: int

  def __str__(self):
    return f"{self.kept} kept ({self.converted} converted), {self.skipped} skipped"


@dataclasses.dataclass(frozen=True)
class Source:
  """Checked images of a spec: `hr[k]` (and `lr[k]` for paired data) is example k."""
  spec: str
  hr: Tuple[ImageEntry, ...]
  lr: Optional[Tuple[ImageEntry, ...]]
  summary: Summary


class _Limits(NamedTuple):
  min_size: int  # Smallest usable side ...
  what: str  # ... which is this, for messages: "patch".
  max_pixels: Optional[int]  # `image_io.check_pixels`.


@dataclasses.dataclass(frozen=True)
class _Checked:
  label: str  # The file path, or the example name, for messages.
  entry: Optional[ImageEntry]  # None: skipped.
  conversion: Optional[str] = None  # Content conversion applied, for the warning.
  problem: Optional[str] = None  # Why the image is skipped.


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
  """Encoded PNG/JPEG/BMP bytes (scalar string) -> uint8 `[H, W, 3]` (graph-safe)."""
  image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
  return tf.ensure_shape(image, [None, None, 3])


def load_source(spec: str, scale: Optional[int] = None, min_hr_size: int = 1,
                data_dir: str = "", default_splits: Sequence[str] = ("train",),
                hr_only: bool = False, download: bool = False,
                min_size_what: str = "patch", max_pixels: Optional[int] = 0) -> Source:
  """Lists and checks the images of `spec` (see module docstring); logs what it skips/converts.

  Args:
    spec: `folder:`, `paired:` or `tfds:` spec.
    scale: SR scale; needed for paired data (LR = HR / scale) and checked against DIV2K names.
    min_hr_size: smallest usable HR side (the training patch); for pairs, LR side * scale.
    data_dir: tensorflow-datasets data_dir ('' = tfds default).
    default_splits: tfds split when the spec names none: the first one the dataset has.
    hr_only: for tfds datasets with `hr` and `lr`, use only `hr`.
    download: let tfds download and prepare a missing dataset (never done otherwise).
    min_size_what: what `min_hr_size` is, for the warnings ("smaller than the 16x16 patch").
    max_pixels: skip larger images (`image_io.check_pixels`: None PIL's limit, 0 none).

  Returns:
    A `Source` with at least one example.

  Raises:
    ValueError: bad spec, or no usable image.
  """
  kind, args = parse_spec(spec)
  limits = _Limits(min_hr_size, min_size_what, max_pixels)
  if kind == "folder":
    lr_items, hr_items = None, _folder_items(args[0])
  elif kind == "paired":
    lr_items, hr_items = _folder_items(args[0]), _folder_items(args[1])
  else:
    hr_items, lr_items = _tfds_items(args[0], args[1], data_dir, default_splits, scale,
                                     hr_only, download)
  if lr_items is None:
    lr, (hr, counts) = None, _check_single(hr_items, limits)
  elif not scale:
    raise ValueError(f"Paired data '{spec}' needs the SR scale.")
  else:
    hr, lr, counts = _check_pairs(lr_items, hr_items, scale, limits)
  if not hr:
    raise ValueError(f"No usable image in data spec '{spec}' ({counts.skipped} skipped; "
                     "see the warnings above).")
  return Source(spec, tuple(hr), None if lr is None else tuple(lr), counts)


def read_images(entries: Sequence[ImageEntry]) -> List[np.ndarray]:
  """Decodes checked entries eagerly -> list of uint8 `[H, W, 3]` (same op as the pipeline)."""
  return [decode_image(e.data or tf.io.read_file(e.path)).numpy() for e in entries]


# --- Listing -------------------------------------------------------------------------------------


def _folder_items(folder: str) -> List[Tuple[str, str, Optional[bytes]]]:
  """Image files under `folder` -> [(relative path, path, None)] sorted by relative path.

  Symlinks are followed, but a folder already listed (a symlink loop, or two links to one
  folder) is listed once. Every file with an image extension is listed, even a dangling link or
  a link loop (`_check_image` skips it, naming it); other non-hidden files are named in one
  warning.
  """
  if not os.path.isdir(folder):
    raise ValueError(f"Image folder '{folder}' does not exist.")
  items, ignored, seen = [], [], set()
  for root, dirs, files in os.walk(folder, followlinks=True):
    info = os.stat(root)
    if (info.st_dev, info.st_ino) in seen:
      logging.warning("Skipping folder %s: already listed as %s (symlink loop or duplicate "
                      "link).", root, os.path.realpath(root))
      dirs.clear()
      continue
    seen.add((info.st_dev, info.st_ino))
    dirs.sort()
    for file in files:
      path = os.path.join(root, file)
      relative = os.path.relpath(path, folder).replace(os.sep, "/")
      if file.lower().endswith(IMAGE_EXTENSIONS):
        items.append((relative, path, None))
      elif not file.startswith("."):
        ignored.append(relative)
  if ignored:
    shown = ", ".join(sorted(ignored)[:_MAX_NAMED])
    more = f" and {len(ignored) - _MAX_NAMED} more" if len(ignored) > _MAX_NAMED else ""
    logging.warning("Ignoring %d file(s) in %s without an image extension (%s): %s%s.",
                    len(ignored), folder, " ".join(IMAGE_EXTENSIONS), shown, more)
  return sorted(items)


def _tfds_items(name, split, data_dir, default_splits, scale, hr_only, download):
  """Reads a prepared tfds dataset -> (hr items, lr items or None) as (name, '', bytes)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from jaxsr import datasets  # pylint: disable=g-import-not-at-top  # Registers set5, ...
  _check_div2k_scale(name, scale)
  where = data_dir or "the default tfds data_dir (~/tensorflow_datasets or $TFDS_DATA_DIR)"
  prepare = datasets.manual_data_hint(name, data_dir)  # jaxsr's benchmark sets.
  if not prepare:
    prepare = (f"Prepare it once with `tfds build {name}"
               f"{' --data_dir=' + data_dir if data_dir else ''}` "
               "(DIV2K and some others need a manual download, see their tfds page).")
  prepare += " Or use a folder:<dir> spec."
  try:
    builder = tfds.builder(name, data_dir=data_dir or None)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise ValueError(f"TFDS dataset '{name}' is neither registered nor prepared in {where} "
                     f"(jaxsr adds {', '.join(datasets.BUILDERS)}). {prepare}") from e
  if not builder.is_prepared():
    if download:
      builder.download_and_prepare()
    elif datasets.prepare_if_manual(name, data_dir):
      builder = tfds.builder(name, data_dir=data_dir or None)  # Reads the prepared info.
    else:
      raise ValueError(f"TFDS dataset '{name}' is not prepared in {where}. {prepare}")
  features = builder.info.features
  image_keys = [k for k in ("hr", "lr") if k in features]
  if image_keys != ["hr", "lr"] or hr_only:
    image_keys = [k for k in ("hr", "image") if k in features][:1]
  if not image_keys:
    raise ValueError(f"TFDS dataset '{name}' has no 'hr'/'lr' or 'image' feature "
                     f"(features: {sorted(features)}).")
  splits = list(builder.info.splits)
  if not split:
    split = next((s for s in default_splits if s in splits), "")
  if not all(re.sub(r"\[.*\]$", "", part) in splits for part in split.split("+")):
    raise ValueError(f"TFDS dataset '{name}' has no split '{split or default_splits[0]}' "
                     f"(splits: {splits}).")
  name_key = next((k for k in ("name", "filename", "file_name", "id") if k in features), None)
  ds = builder.as_dataset(split=split, shuffle_files=False,
                          decoders={k: tfds.decode.SkipDecoding() for k in image_keys})
  items = {k: [] for k in image_keys}
  for index, example in enumerate(ds.as_numpy_iterator()):
    example_name = f"{index:06d}"
    if name_key:
      example_name = os.path.splitext(_as_text(example[name_key]))[0]
    for k in image_keys:
      items[k].append((example_name, "", example[k]))
  if len(image_keys) == 2:
    return items["hr"], items["lr"]
  return items[image_keys[0]], None


def _as_text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _check_div2k_scale(name: str, scale: Optional[int]) -> None:
  """`div2k/bicubic_x4` with scale 2 -> ValueError (its LR images are x4)."""
  dataset, _, config_name = name.partition("/")
  match = re.search(r"x(\d+)$", config_name)
  if scale and dataset == "div2k" and match and int(match.group(1)) != scale:
    raise ValueError(f"TFDS dataset '{name}' has x{match.group(1)} LR images but scale={scale}.")


# --- Checking ------------------------------------------------------------------------------------


def _check_all(items, limits: _Limits) -> List[_Checked]:
  """Checks items [(name, path, bytes or None)] in parallel threads (decoders release the GIL)."""
  workers = min(_MAX_SCAN_THREADS, os.cpu_count() or 1)
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    return list(pool.map(lambda item: _check_image(*item, limits), items))


def _check_single(items, limits: _Limits) -> Tuple[List[ImageEntry], Summary]:
  """Checks HR-only items -> (usable entries, Summary)."""
  checked = _check_all(items, limits)
  for c in checked:
    _log(c)
  entries = [c.entry for c in checked if c.entry is not None]
  converted = sum(c.entry is not None and c.conversion is not None for c in checked)
  return entries, Summary(len(entries), converted, len(checked) - len(entries))


def _check_pairs(lr_items, hr_items, scale: int, limits: _Limits):
  """Matches LR to HR by name, checks both and their sizes -> (hr entries, lr entries, Summary)."""
  lr_by_key = {}
  skipped = 0
  suffix = re.compile(rf"x{scale}$")
  for item in lr_items:
    key = suffix.sub("", os.path.splitext(item[0])[0])
    if key in lr_by_key:
      logging.warning("Skipping LR image %s: %s is already the LR image of '%s'.",
                      _item_label(item), _item_label(lr_by_key[key]), key)
      skipped += 1
    else:
      lr_by_key[key] = item
  pairs = []
  for item in hr_items:
    lr_item = lr_by_key.pop(os.path.splitext(item[0])[0], None)
    if lr_item is None:
      logging.warning("Skipping HR image %s: no LR image with the same name.",
                      _item_label(item))
      skipped += 1
    else:
      pairs.append((lr_item, item))
  for item in lr_by_key.values():
    logging.warning("Skipping LR image %s: no HR image with the same name.",
                    _item_label(item))
    skipped += 1
  lr_min = -(-limits.min_size // scale)
  lr_checked = _check_all([lr for lr, _ in pairs], limits._replace(min_size=lr_min))
  hr_checked = _check_all([hr for _, hr in pairs], limits._replace(min_size=lr_min * scale))
  hr_entries, lr_entries, converted = [], [], 0
  for lr, hr in zip(lr_checked, hr_checked):
    _log(lr)
    _log(hr)
    if lr.entry is None or hr.entry is None:
      skipped += 1
      continue
    expected = (hr.entry.height // scale, hr.entry.width // scale)
    if (lr.entry.height, lr.entry.width) != expected:
      logging.warning("Skipping pair %s / %s: LR is %dx%d, expected %dx%d (HR %dx%d / %d).",
                      lr.label, hr.label, lr.entry.height, lr.entry.width,
                      *expected, hr.entry.height, hr.entry.width, scale)
      skipped += 1
      continue
    converted += (lr.conversion is not None) + (hr.conversion is not None)
    hr_entries.append(hr.entry)
    lr_entries.append(lr.entry)
  return hr_entries, lr_entries, Summary(len(hr_entries), converted, skipped)


def _item_label(item) -> str:
  name, path, _ = item
  return path or name


def _log(checked: _Checked) -> None:
  if checked.problem:
    logging.warning("Skipping image %s: %s.", checked.label, checked.problem)
  elif checked.conversion:
    logging.warning("Converting image %s: %s.", checked.label, checked.conversion)


def _check_image(name: str, path: str, data: Optional[bytes], limits: _Limits) -> _Checked:
  """Reads, checks and (when needed) converts one image; never raises for a bad image."""
  def skip(problem):
    return _Checked(path or name, None, problem=problem)

  try:
    if data is None:
      data = image_io.read_file(path)
    image = image_io.open_image(path or name, data)
    image_io.check_pixels(path or name, image, limits.max_pixels)
  except image_io.UnreadableImageError as e:
    return skip(e.reason)
  width, height = image.size
  if min(height, width) < limits.min_size:
    return skip(f"{width}x{height} is smaller than the {limits.min_size}x{limits.min_size} "
                f"{limits.what}")
  conversion = _needed_conversion(image, data)
  try:
    if conversion is None:  # Decoded as is by the pipeline: check that it decodes.
      decoded_shape = decode_image(data).shape
      data = b"" if path else data
    else:
      rgb = _to_rgb8(image, data)
      decoded_shape = rgb.shape
      data = _encode_png(rgb)
  except (tf.errors.OpError, OSError, SyntaxError, ValueError) as e:
    return skip(f"corrupt or truncated ({type(e).__name__}: {_first_line(e)})")
  if tuple(decoded_shape[:2]) != (height, width):
    return skip(f"decodes to {decoded_shape[1]}x{decoded_shape[0]}, header says "
                f"{width}x{height}")
  conversion = None if conversion == "" else conversion
  entry = ImageEntry(name, path, data, height, width, grayscale=image.mode in _GRAY_MODES)
  return _Checked(path or name, entry, conversion=conversion)


def _first_line(error: Exception) -> str:
  text = getattr(error, "message", None) or str(error)
  text = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:\w+\]", "", text).strip()  # TF's op names.
  return text.splitlines()[0] if text else ""


def _needed_conversion(image: Image.Image, data: bytes) -> Optional[str]:
  """None: decode as is; '': re-encode, same pixels; else a description of the conversion."""
  if image.format == "PNG":
    bit_depth, color_type = image_io.png_header(data)
    if bit_depth == 8 and color_type == 2:
      return None
    kind = _PNG_COLOR_TYPES.get(color_type, f"color type {color_type}")
    alpha = " (alpha dropped)" if color_type in (4, 6) else ""
    return f"{bit_depth}-bit {kind} PNG -> 8-bit RGB{alpha}"
  if image.format in ("JPEG", "MPO") and image.mode == "RGB":
    return None
  if image.mode == "RGB":
    return ""  # E.g. BMP: kept as an in-memory PNG so that one decoder reads everything.
  kind = _PIL_MODE_NAMES.get(image.mode, image.mode)
  alpha = " (alpha dropped)" if image.mode in ("LA", "PA", "RGBA") else ""
  return f"{kind} {image.format} -> 8-bit RGB{alpha}"


def _to_rgb8(image: Image.Image, data: bytes) -> np.ndarray:
  """Any readable image -> uint8 `[H, W, 3]`: 16 bits rounded as round(x / 257), alpha dropped."""
  if image.format == "PNG":  # TF reads every PNG kind exactly, 16-bit RGB included (PIL does not).
    return _uint16_to_uint8(tf.io.decode_png(data, channels=3, dtype=tf.uint16).numpy())
  if image.format in ("JPEG", "MPO"):  # Grayscale and (Adobe) CMYK JPEGs.
    return tf.io.decode_jpeg(data, channels=3).numpy()
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    image.load()
    if image.mode.startswith("I"):  # 16/32-bit integer grayscale.
      gray = _uint16_to_uint8(np.asarray(image).astype(np.int64).clip(0, 65535))
      return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == "F":
      raise ValueError("floating-point images are not supported")
    return np.asarray(image.convert("RGB"))


def _uint16_to_uint8(image: np.ndarray) -> np.ndarray:
  return np.round(image.astype(np.float64) / 257.0).astype(np.uint8)


def _encode_png(rgb: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
  return buffer.getvalue()
