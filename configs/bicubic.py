"""The MATLAB-bicubic baseline, evaluated by the same code as every network (no checkpoint).

  python -m jaxsr.main --mode=eval --config=configs/bicubic.py --workdir=/tmp/bicubic \
      --config.eval.datasets=folder:/path/to/Set5/HR --config.scale=4
"""

from jaxsr import config_base
from jaxsr import samples


def get_config():
  c = config_base.base_config()
  c.scale = 4
  c.model.name = "bicubic"
  c.eval.datasets = "folder:" + samples.VAL_DIR
  return c
