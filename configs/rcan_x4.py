"""RCAN x4 (15,592,379 parameters) with the paper's settings (Zhang et al., ECCV 2018, and the
official RCAN_TrainCode option.py): 10 residual groups x 20 RCABs, 64 features, reduction 16,
mean shift at rgb_range 255; DIV2K, LR patch 48, batch 16, flips and 90-degree rotations, L1,
Adam 1e-4 (0.9, 0.999), lr halved every 200k steps, 1M steps (1000 epochs of 1000 batches),
no EMA.

  python -m jaxsr.main --config=configs/rcan_x4.py --workdir=/tmp/rcan_x4 \
      --config.data.data_dir=/path/to/tensorflow_datasets

traiNNer-redux's recipe (RCAN_fromscratch.yml) instead: --config.optim.learning_rate=2e-4
--config.optim.b2=0.99 --config.ema_decay=0.999 --config.num_train_steps=500000
--config.optim.milestones='(250000, 400000, 450000, 475000)' --config.data.gt_size=256
(LR patch 64; it trains batch 8 with an MS-SSIM + L1 loss).
The released weights as a workdir:
  python -m jaxsr.convert --arch=rcan --workdir=/tmp/rcan_x4_released --input=RCAN_BIX4.pt
"""

from jaxsr import config_base


def get_config():
  c = config_base.base_config()
  c.scale = 4
  c.batch_size = 16
  c.num_train_steps = 1_000_000
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.checkpoint_every_steps = 5_000
  c.ema_decay = 0.0
  c.model.name = "rcan"
  c.model.n_resgroups = 10
  c.model.n_resblocks = 20
  c.model.n_feats = 64
  c.model.reduction = 16
  c.model.rgb_range = 255.0
  c.model.norm = True
  c.data.train = "tfds:div2k/bicubic_x4"
  c.data.gt_size = 192  # LR patch 48.
  c.loss.pixel = "l1"
  c.optim.learning_rate = 1e-4
  c.optim.b1, c.optim.b2 = 0.9, 0.999
  c.optim.schedule = "multistep"  # StepLR(200 epochs of 1000 batches, gamma 0.5).
  c.optim.milestones = (200_000, 400_000, 600_000, 800_000)
  c.optim.gamma = 0.5
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
