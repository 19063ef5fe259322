"""DAT x4 (14,802,051 parameters) with the official recipe (options/Train/train_DAT_x4.yml,
its from-scratch settings): embed 180, depth and heads 6 x 6, split (8, 32), expansion 4,
'pixelshuffle', drop path 0.1; LR patch 64, batch 32 (8 x 4 GPUs), L1, Adam 2e-4 (0.9, 0.99),
MultiStepLR [250k, 400k, 450k, 475k] x 0.5, 500k steps, no EMA.

  python -m jaxsr.main --config=configs/dat_x4.py --workdir=/tmp/dat_x4 \
      --config.data.data_dir=/path/to/tensorflow_datasets

The paper trains on DF2K (DIV2K + Flickr2K): --config.data.train=paired:<lr_dir>:<hr_dir>. Its
released x4 model was fine-tuned from DAT x2 with half of that (lr 1e-4, milestones [125k,
200k, 225k, 237.5k], 250k steps); jaxsr's init_from needs the same architecture, so this starts
from scratch. DAT-S: --config.model.split_size='(8, 16)' --config.model.expansion_factor=2.0;
DAT-2: --config.model.expansion_factor=2.0. The released weights as a workdir:
  python -m jaxsr.convert --arch=dat --workdir=/tmp/dat_x4_released --input=DAT_x4.pth
"""

from jaxsr import config_base


def get_config():
  c = config_base.base_config()
  c.scale = 4
  c.batch_size = 32
  c.num_train_steps = 500_000
  c.log_every_steps = 200
  c.eval_every_steps = 5_000
  c.checkpoint_every_steps = 5_000
  c.ema_decay = 0.0  # BasicSR's default: the DAT options set no ema_decay.
  c.model.name = "dat"
  c.model.embed_dim = 180
  c.model.split_size = (8, 32)
  c.model.depth = (6, 6, 6, 6, 6, 6)
  c.model.num_heads = (6, 6, 6, 6, 6, 6)
  c.model.expansion_factor = 4.0
  c.model.qkv_bias = True
  c.model.img_size = 64
  c.model.img_range = 1.0
  c.model.resi_connection = "1conv"
  c.model.upsampler = "pixelshuffle"
  c.model.drop_path_rate = 0.1
  c.data.train = "tfds:div2k/bicubic_x4"
  c.data.gt_size = 256  # LR patch 64.
  c.loss.pixel = "l1"
  c.optim.learning_rate = 2e-4
  c.optim.b1, c.optim.b2 = 0.9, 0.99
  c.optim.schedule = "multistep"  # MultiStepLR.
  c.optim.milestones = (250_000, 400_000, 450_000, 475_000)
  c.optim.gamma = 0.5
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
