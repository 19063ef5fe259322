"""Side-by-side crops for docs: bicubic | SR images given | HR, one labelled row per image.

  python bench/crop_comparison.py --hr=Set5/HR/baby.png --scale=4 --box=120,200,96 \
      --sr="PSNR model=/tmp/psnr/eval/HR_x4/baby.png" --sr="GAN model=/tmp/gan/eval/HR_x4/baby.png" \
      --out=docs/baby_x4.png

The SR images are `--mode=eval` outputs (mod-cropped HR size). Bicubic is MATLAB-bicubic down
then up from the mod-cropped HR, as evaluation does. Crops are enlarged by `--zoom` (nearest).
"""

from absl import app
from absl import flags
import numpy as np
from PIL import Image
from PIL import ImageDraw

from jaxsr import metrics
from jaxsr.data import input_pipeline
from jaxsr.ops import imresize

FLAGS = flags.FLAGS
flags.DEFINE_string("hr", None, "HR image file.", required=True)
flags.DEFINE_integer("scale", 4, "Scale of the SR images.")
flags.DEFINE_multi_string("sr", [], "'<label>=<SR png>' (repeatable), in column order.")
flags.DEFINE_string("box", None, "top,left,size of the crop in HR pixels.", required=True)
flags.DEFINE_integer("zoom", 2, "Nearest-neighbour enlargement of the crops.")
flags.DEFINE_string("out", None, "Output PNG.", required=True)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
  image = Image.fromarray(tile)
  draw = ImageDraw.Draw(image)
  draw.rectangle((0, 0, 7 * len(text) + 6, 14), fill=(0, 0, 0))
  draw.text((3, 1), text, fill=(255, 255, 255))
  return np.asarray(image)


def main(_):
  hr_full = np.asarray(Image.open(FLAGS.hr).convert("RGB"))
  lr, hr = input_pipeline.make_eval_pair(hr_full, FLAGS.scale)
  bicubic = metrics.to_uint8(np.clip(imresize.imresize_np(lr, FLAGS.scale), 0.0, 1.0))
  columns = [("bicubic", bicubic)]
  for item in FLAGS.sr:
    label, _, path = item.partition("=")
    sr = np.asarray(Image.open(path).convert("RGB"))
    if sr.shape != hr.shape:
      raise ValueError(f"{path}: {sr.shape} does not match the mod-cropped HR {hr.shape}")
    columns.append((label, sr))
  columns.append(("HR", hr))
  top, left, size = (int(v) for v in FLAGS.box.split(","))
  tiles = []
  for label, image in columns:
    crop = image[top:top + size, left:left + size]
    crop = np.repeat(np.repeat(crop, FLAGS.zoom, 0), FLAGS.zoom, 1)
    tiles.append(_label(np.ascontiguousarray(crop), label))
  gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
  row = np.concatenate([x for tile in tiles for x in (tile, gap)][:-1], axis=1)
  Image.fromarray(row).save(FLAGS.out)
  print(f"wrote {FLAGS.out} {row.shape}")


if __name__ == "__main__":
  app.run(main)
