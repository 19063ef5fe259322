"""Seconds per PSNR train step (jit, donated state, batch sharded over the mesh); prints JSON.

  python bench/train_step.py                       # MSRResNet x4, batch 16, LR patch 32
  python bench/train_step.py --model=rrdbnet --batch=8 --patch=32 --dtype=bfloat16
"""

import json

from absl import app
from absl import flags
import step_timer

from jaxsr import config_base

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "msrresnet", "Model name in the registry.")
flags.DEFINE_integer("scale", 4, "Upscaling factor.")
flags.DEFINE_integer("batch", 16, "Global batch size.")
flags.DEFINE_integer("patch", 32, "LR patch side (HR patch = patch * scale).")
flags.DEFINE_string("dtype", "float32", "Computation dtype: float32 | bfloat16.")
flags.DEFINE_integer("warmup", 2, "Untimed steps after compilation.")
flags.DEFINE_integer("steps", 10, "Timed steps.")


def main(_):
  config = config_base.base_config()
  config.model.name, config.scale, config.dtype = FLAGS.model, FLAGS.scale, FLAGS.dtype
  config.batch_size, config.data.gt_size = FLAGS.batch, FLAGS.patch * FLAGS.scale
  result = step_timer.time_train_step(config, FLAGS.warmup, FLAGS.steps)
  print(json.dumps({"model": FLAGS.model, "scale": FLAGS.scale, "batch": FLAGS.batch,
                    "lr_patch": FLAGS.patch, "dtype": FLAGS.dtype, **result}))


if __name__ == "__main__":
  app.run(main)
