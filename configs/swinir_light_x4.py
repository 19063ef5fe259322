"""SwinIR lightweight x4 (SwinIR-S, 929,628 parameters) with the paper's settings: embed 60,
depths and heads 6 x 4, window 8, 'pixelshuffledirect' (one conv + PixelShuffle); DIV2K, LR patch
64, batch 64; otherwise configs/swinir_classical_x2.py's recipe (L1, Adam 2e-4 (0.9, 0.99),
MultiStepLR [250k, 400k, 450k, 475k] x 0.5, 500k steps, EMA 0.999).

  python -m jaxsr.main --config=configs/swinir_light_x4.py --workdir=/tmp/swinir_light_x4 \
      --config.data.data_dir=/path/to/tensorflow_datasets

The released weights as a workdir:
  python -m jaxsr.convert --arch=swinir --workdir=/tmp/swinir_light_x4_released \
      --input=002_lightweightSR_DIV2K_s64w8_SwinIR-S_x4.pth
"""

import os

from jaxsr import config_base


def get_config():
  c = config_base.config_from_file(
      os.path.join(os.path.dirname(__file__), "swinir_classical_x2.py"))
  c.scale = 4
  c.batch_size = 64
  c.model.embed_dim = 60
  c.model.depths = (6, 6, 6, 6)
  c.model.num_heads = (6, 6, 6, 6)
  c.model.upsampler = "pixelshuffledirect"
  c.data.gt_size = 256  # LR patch 64.
  c.data.train = "tfds:div2k/bicubic_x4"
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
