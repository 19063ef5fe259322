"""Seconds per ESRGAN train step (RRDBNet G + VGG-style D, relativistic GAN, G and D updates),
with and without the VGG19 perceptual loss; prints one JSON line per variant.

  python bench/gan_step.py                      # batch 4, LR patch 32 (HR 128), float32
  python bench/gan_step.py --vgg_weights=/path/to/vgg19-dcbb9e9d.pth --dtype=bfloat16

Without --vgg_weights, random VGG19 weights are written to a temporary Keras-layout file: the
timing does not depend on the weights' values.
"""

import json
import os
import tempfile

from absl import app
from absl import flags
import step_timer

from jaxsr import config_base
from jaxsr.models import vgg

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch", 4, "Global batch size.")
flags.DEFINE_integer("patch", 32, "LR patch side; HR = 4 * patch (128 or 256 for the VGG D).")
flags.DEFINE_string("dtype", "float32", "Computation dtype: float32 | bfloat16.")
flags.DEFINE_string("vgg_weights", "", "VGG19 weights file ('' = random weights).")
flags.DEFINE_integer("warmup", 1, "Untimed steps after compilation.")
flags.DEFINE_integer("steps", 5, "Timed steps.")


def esrgan_config(perceptual: bool, vgg_weights: str):
  """configs/esrgan_x4.py's settings at this benchmark's batch, patch and dtype."""
  c = config_base.gan_config()
  c.scale, c.batch_size, c.dtype = 4, FLAGS.batch, FLAGS.dtype
  c.data.gt_size = FLAGS.patch * 4
  c.model.name, c.model.num_feat, c.model.num_block, c.model.num_grow_ch = "rrdbnet", 64, 23, 32
  c.discriminator.name, c.discriminator.num_feat = "vgg_style", 64
  c.loss.pixel_weight = 1e-2
  c.loss.perceptual_weight = 1.0 if perceptual else 0.0
  c.loss.perceptual_layers = "conv5_4:1.0"
  c.loss.vgg_weights = vgg_weights
  c.loss.gan_type, c.loss.gan_weight = "ragan", 5e-3
  for optim in (c.optim, c.optim_d):
    optim.learning_rate, optim.schedule = 1e-4, "constant"
  return c


def main(_):
  with tempfile.TemporaryDirectory() as tmp:
    weights = FLAGS.vgg_weights
    if not weights:
      weights = os.path.join(tmp, vgg.KERAS_VGG19_FILE)
      step_timer.write_random_vgg19_h5(weights)
    for perceptual in (False, True):
      result = step_timer.time_train_step(esrgan_config(perceptual, weights), FLAGS.warmup,
                                          FLAGS.steps)
      print(json.dumps({"bench": "esrgan_step", "perceptual_loss": perceptual,
                        "vgg_weights": FLAGS.vgg_weights or "random", "batch": FLAGS.batch,
                        "lr_patch": FLAGS.patch, "dtype": FLAGS.dtype, **result}), flush=True)


if __name__ == "__main__":
  app.run(main)
