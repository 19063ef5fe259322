"""SwinIR classical x4 (SwinIR-M, 11,900,199 parameters): configs/swinir_classical_x2.py's
settings (BasicSR train_SwinIR_SRx4_scratch.yml) at x4: LR patch 48 (HR 192), batch 32, L1,
Adam 2e-4, MultiStepLR [250k, 400k, 450k, 475k] x 0.5, 500k steps, DIV2K x4.

  python -m jaxsr.main --config=configs/swinir_classical_x4.py --workdir=/tmp/swinir_classical_x4 \
      --config.data.data_dir=/path/to/tensorflow_datasets

Trained on DF2K (DIV2K + Flickr2K) the paper uses LR patch 64: --config.data.gt_size=256.
The released weights as a workdir (eval, upscale, or --config.init_from=<workdir>):
  python -m jaxsr.convert --arch=swinir --workdir=/tmp/swinir_x4_released \
      --input=001_classicalSR_DIV2K_s48w8_SwinIR-M_x4.pth
"""

import os

from jaxsr import config_base


def get_config():
  c = config_base.config_from_file(
      os.path.join(os.path.dirname(__file__), "swinir_classical_x2.py"))
  c.scale = 4
  c.data.gt_size = 192  # LR patch 48.
  c.data.train = "tfds:div2k/bicubic_x4"
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
