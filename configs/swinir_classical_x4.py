"""SwinIR classical x4 (SwinIR-M, 11,900,199 parameters) with the paper's settings (BasicSR
train_SwinIR_SRx4_scratch.yml): embed 180, depths and heads 6 x 6, window 8, 'pixelshuffle';
DIV2K, LR patch 48, batch 32, L1, Adam 2e-4 (0.9, 0.99), MultiStepLR [250k, 400k, 450k, 475k]
x 0.5, 500k steps, EMA 0.999.

  python -m jaxsr.main --config=configs/swinir_classical_x4.py --workdir=/tmp/swinir_classical_x4 \
      --config.data.data_dir=/path/to/tensorflow_datasets

Trained on DF2K (DIV2K + Flickr2K) the paper uses LR patch 64: --config.data.gt_size=256.
The released weights as a workdir (eval, upscale, or --config.init_from=<workdir>):
  python -m jaxsr.convert --arch=swinir --workdir=/tmp/swinir_x4_released \
      --input=001_classicalSR_DIV2K_s48w8_SwinIR-M_x4.pth
"""

from jaxsr import config_base


def get_config():
  c = config_base.base_config()
  c.scale = 4
  c.batch_size = 32
  c.num_train_steps = 500_000
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.checkpoint_every_steps = 5_000
  c.ema_decay = 0.999
  c.model.name = "swinir"
  c.model.embed_dim = 180
  c.model.depths = (6, 6, 6, 6, 6, 6)
  c.model.num_heads = (6, 6, 6, 6, 6, 6)
  c.model.window_size = 8
  c.model.mlp_ratio = 2.0
  c.model.upsampler = "pixelshuffle"
  c.model.resi_connection = "1conv"
  c.model.img_range = 1.0
  c.model.drop_path_rate = 0.1
  c.data.train = "tfds:div2k/bicubic_x4"
  c.data.gt_size = 192  # LR patch 48.
  c.loss.pixel = "l1"
  c.optim.learning_rate = 2e-4
  c.optim.b1, c.optim.b2 = 0.9, 0.99
  c.optim.schedule = "multistep"  # MultiStepLR.
  c.optim.milestones = (250_000, 400_000, 450_000, 475_000)
  c.optim.gamma = 0.5
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
