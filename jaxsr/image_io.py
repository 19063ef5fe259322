"""Image files <-> float arrays, keeping bit depth (8 | 16) and mode (L, LA, RGB, RGBA).

`read_image` returns float32 `[H, W, C]` in [0, 1] (C = 1, 2, 3, 4 for L, LA, RGB, RGBA) and an
`ImageInfo`, or raises `UnreadableImageError` naming the file and why (missing, dangling symlink,
symlink loop, permission denied, not a regular file, empty, not an image, corrupt, truncated, or
more pixels than `max_pixels`: PIL's decompression-bomb limit, ~89 Mpixels, by default);
`write_image` writes such an array back in the same bit depth and mode, in the
format its path's extension names. Palette images read as RGB (RGBA with transparency), 1-bit
as L, other colour spaces (CMYK, YCbCr, ...) as RGB. Writes go through `etils.epath`
(`write_file`, `save_pil`): a path to write may be local or `gs://...`; reads are local.

16-bit PNGs are decoded and encoded by TensorFlow (PIL reduces 16-bit colour to 8 bits), which is
imported on first use only, through `jaxsr.data` (accelerators hidden from TF): it costs ~450 MiB
of RSS and ~7 s, so 8-bit images and JPEGs, read and written by PIL, do without it.
"""

import errno
import io
import os
import stat
from typing import NamedTuple, Optional, Tuple
import warnings

from etils import epath
import numpy as np
from PIL import Image
from PIL import ImageOps
from PIL import UnidentifiedImageError

CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
# Output extension -> PIL format name (lowercase); only PNG keeps 16 bits.
FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".bmp": "bmp",
           ".tif": "tiff", ".tiff": "tiff"}
JPEG_QUALITY = 95

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MODES = {0: "L", 2: "RGB", 4: "LA", 6: "RGBA"}  # IHDR colour type -> mode (16-bit kinds).
_ROWS = 256  # Rows per block in `quantize`.
_PIL_GRAY16 = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class ImageInfo(NamedTuple):
  """How an image file stores its pixels.

  Attributes:
    bit_depth: 8 or 16 bits per channel.
    mode: 'L', 'LA', 'RGB' or 'RGBA'.
    format: PIL format name, lowercase: 'png', 'jpeg', 'webp', ...
  """
  bit_depth: int
  mode: str
  format: str


class UnreadableImageError(ValueError):
  """The file is not an image that can be decoded: message `<path>: <reason>`."""

  def __init__(self, path: str, reason: str):
    super().__init__(f"{path}: {reason}")
    self.path = path
    self.reason = reason


def has_alpha(mode: str) -> bool:
  return mode in ("LA", "RGBA")


def format_for_path(path: str) -> Optional[str]:
  """The format `write_image` writes for `path` ('png', 'jpeg', ...), None if unknown."""
  return FORMATS.get(os.path.splitext(path)[1].lower())


def read_image(path: str, max_pixels: Optional[int] = None) -> Tuple[np.ndarray, ImageInfo]:
  """Reads an image file.

  Args:
    path: file path.
    max_pixels: refuse images with more pixels (checked from the header, before decoding);
      None: PIL's `Image.MAX_IMAGE_PIXELS`; 0: no limit but PIL's own (twice that).

  Returns:
    (float32 `[H, W, C]` in [0, 1] (pixel / 255 or / 65535), its `ImageInfo`).

  Raises:
    UnreadableImageError: see the module docstring.
  """
  data = read_file(path)
  image = open_image(path, data)
  check_pixels(path, image, max_pixels)
  try:
    fmt = (image.format or "").lower()
    if fmt == "png" and png_header(data)[0] == 16:
      pixels, mode = _decode_png16(data)
    else:  # Turned upright as the EXIF orientation says (cameras, as cv2.imread does).
      pixels, mode = _decode_pil(ImageOps.exif_transpose(image))
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise UnreadableImageError(path, f"corrupt or truncated ({e})") from e
  pixels = pixels.reshape(*pixels.shape[:2], CHANNELS[mode])
  bit_depth = 16 if pixels.dtype == np.uint16 else 8
  return pixels.astype(np.float32) / np.float32(2**bit_depth - 1), ImageInfo(bit_depth, mode, fmt)


def read_file(path: str) -> bytes:
  """The bytes of the regular file `path` (links followed).

  Raises:
    UnreadableImageError: missing, a dangling symlink or a symlink loop, permission denied, or
      not a regular file (a FIFO or device would block or never end).
  """
  try:
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
      kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
      raise UnreadableImageError(path, f"{kind} (mode {stat.filemode(mode)})")
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise UnreadableImageError(path, f"cannot read the file ({_os_error_reason(path, e)})") from e
  return data


def open_image(path: str, data: bytes) -> Image.Image:
  """PIL image of encoded `data` (only the header is read); `path` names it in errors.

  Raises:
    UnreadableImageError: empty, not an image PIL recognises, a broken header, or over PIL's
      decompression-bomb error limit (its warning, at half that, is silenced).
  """
  if not data:
    raise UnreadableImageError(path, "empty file (0 bytes)")
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      return Image.open(io.BytesIO(data))
  except UnidentifiedImageError as e:
    raise UnreadableImageError(path, "not a readable image (no image format recognised)") from e
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise UnreadableImageError(path, f"not a readable image ({type(e).__name__}: {e})") from e


def write_image(path: str, image: np.ndarray, info: ImageInfo,
                jpeg_quality: int = JPEG_QUALITY) -> None:
  """Writes `image` in `info.mode`, with `info.bit_depth` in PNG (8 bits in other formats).

  Args:
    path: output file, local or `gs://...`; its extension picks the format (see `FORMATS`).
    image: float `[H, W, C]` in [0, 1] (clipped, rounded), C the channels of `info.mode`.
    info: bit depth and mode to write (`info.format` is not used: the extension decides).
    jpeg_quality: JPEG quality (1..100).

  Raises:
    ValueError: unknown extension, JPEG with alpha, or channels that do not match the mode.
  """
  fmt = format_for_path(path)
  if fmt is None:
    raise ValueError(f"{path}: unknown image extension; use one of {sorted(FORMATS)}")
  if image.ndim != 3 or image.shape[-1] != CHANNELS[info.mode]:
    raise ValueError(f"{path}: image {image.shape} does not have the "
                     f"{CHANNELS[info.mode]} channels of mode {info.mode}")
  if fmt == "jpeg" and has_alpha(info.mode):
    raise ValueError(f"{path}: JPEG cannot store the alpha of a {info.mode} image; use .png")
  bit_depth = info.bit_depth if fmt == "png" else 8
  pixels = quantize(image, bit_depth)
  if bit_depth == 16:
    write_file(path, _tf().io.encode_png(pixels).numpy())
    return
  pil = Image.fromarray(pixels[..., 0] if info.mode == "L" else pixels, mode=info.mode)
  options = {"quality": jpeg_quality} if fmt == "jpeg" else {}
  save_pil(path, pil, fmt, **options)


def write_file(path: epath.PathLike, data: bytes) -> None:
  """Writes `data` to `path`: a local path or a URL `etils.epath` reaches (`gs://...`, through
  `tf.io.gfile`). The parent directory must exist."""
  epath.Path(path).write_bytes(data)


def save_pil(path: epath.PathLike, image: Image.Image, fmt: str = "png", **options) -> None:
  """Encodes `image` in PIL format `fmt` with PIL's `options` (the bytes
  `image.save(path, format=fmt, **options)` writes) and writes them with `write_file`: local
  or `gs://...`."""
  buffer = io.BytesIO()
  image.save(buffer, format=fmt.upper(), **options)
  write_file(path, buffer.getvalue())


def quantize(image: np.ndarray, bit_depth: int) -> np.ndarray:
  """Float `[...]` in [0, 1] -> uint8 / uint16 levels: clip, `round(x * (2**bits - 1))`."""
  levels = np.float32(2**bit_depth - 1)
  image = np.asarray(image)
  out = np.empty(image.shape, np.uint16 if bit_depth == 16 else np.uint8)
  for start in range(0, len(image), _ROWS):  # In row blocks: no full-size float temporary.
    x = np.clip(image[start:start + _ROWS].astype(np.float32), 0.0, 1.0)
    x *= levels
    out[start:start + _ROWS] = np.round(x, out=x)
  return out


def png_header(data: bytes) -> Tuple[int, int]:
  """(bit depth, colour type) from a PNG's IHDR chunk (which the PNG format puts first)."""
  if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
    raise ValueError("not a PNG file")
  return data[24], data[25]


def check_pixels(path: str, image: Image.Image, max_pixels: Optional[int] = None) -> None:
  """UnreadableImageError if `image` has more than `max_pixels` pixels (None: PIL's
  `Image.MAX_IMAGE_PIXELS`, ~89 M; 0: no limit)."""
  limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
  width, height = image.size
  if limit and width * height > limit:
    raise UnreadableImageError(path, f"{width}x{height} is {width * height} pixels, over the "
                               f"limit of {limit} (max_pixels)")


def _os_error_reason(path: str, error: OSError) -> str:
  """Why `path` cannot be opened, in words: e.g. 'symlink loop', 'dangling symlink'."""
  if error.errno == errno.ELOOP:
    return "symlink loop"
  if error.errno == errno.ENOENT and os.path.islink(path):
    return f"dangling symlink to {os.readlink(path)}"
  return error.strerror or str(error)


def _decode_png16(data: bytes) -> Tuple[np.ndarray, str]:
  """uint16 `[H, W, C]` and mode of a 16-bit PNG."""
  mode = _PNG_MODES[png_header(data)[1]]  # A 16-bit PNG has no palette.
  tf = _tf()
  try:
    pixels = tf.io.decode_png(data, dtype=tf.uint16).numpy()  # The file's own channels.
  except tf.errors.OpError as e:
    raise ValueError(e.message.splitlines()[0]) from None
  return pixels, mode


def _decode_pil(image: Image.Image) -> Tuple[np.ndarray, str]:
  """uint8 (uint16 for 16-bit gray) `[H, W, ...]` and mode of a PIL image."""
  if image.mode in _PIL_GRAY16:
    return np.clip(np.asarray(image), 0, 65535).astype(np.uint16), "L"
  if image.mode in ("1", "L", "LA", "RGB", "RGBA"):
    mode = "L" if image.mode == "1" else image.mode
  elif image.mode in ("P", "PA"):
    mode = "RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB"
  elif image.mode in ("La", "RGBa"):  # Premultiplied alpha.
    mode = image.mode.upper()
  else:  # CMYK, YCbCr, LAB, HSV, F, ...
    mode = "RGB"
  return np.asarray(image.convert(mode)), mode


def _tf():
  """TensorFlow, imported through `jaxsr.data`, which hides accelerators from it."""
  import jaxsr.data  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf
