"""PSNR-oriented pre-training of the seed's encoder-decoder generator (`SeedGenerator`) x4,
the initialisation of configs/seed_gan_x4.py; by default on the samples shipped with jaxsr,
validated on their Set5.

  python -m jaxsr.main --config=configs/seed_psnr_x4.py --workdir=/tmp/seed_psnr_x4 \
      --config.data.train=folder:/data/sr_train --config.eval.datasets=folder:/data/Set5

`folder:` reads images recursively, so /data/sr_train may hold T91/, BSD200/, General100/.
"""

from jaxsr import config_base
from jaxsr import samples


def get_config():
  c = config_base.base_config()
  c.scale = 4
  c.batch_size = 16
  c.num_train_steps = 100_000
  c.log_every_steps = 100
  c.eval_every_steps = 2_000
  c.checkpoint_every_steps = 2_000
  c.model.name = "seed"
  c.model.num_feat = 64
  c.data.train = "folder:" + samples.TRAIN_DIR
  c.data.gt_size = 128
  c.data.cache = True
  c.loss.pixel = "l1"
  c.optim.learning_rate = 2e-4
  c.optim.b1, c.optim.b2 = 0.5, 0.999
  c.optim.schedule = "cosine"
  c.optim.min_lr_ratio = 0.01
  c.eval.datasets = "folder:" + samples.VAL_DIR
  return c
