"""Quickstart: a small MSRResNet x2 trained on the sample images shipped with jaxsr (offline, CPU).

Runs in under 10 minutes on 2 CPU cores and ends above the bicubic baseline on Set5:

  python -m jaxsr.main --config=configs/quickstart.py --workdir=/tmp/jaxsr_quickstart

Writes checkpoints, TensorBoard logs and sample grids (LR | bicubic | SR | HR) in the workdir.
"""

from jaxsr import config_base
from jaxsr import samples


def get_config():
  c = config_base.base_config()
  c.scale = 2
  c.batch_size = 16
  c.num_train_steps = 1000
  c.log_every_steps = 50
  c.eval_every_steps = 500
  c.checkpoint_every_steps = 500
  c.ema_decay = 0.0
  c.model.name = "msrresnet"
  c.model.num_feat = 32
  c.model.num_block = 4
  c.data.train = "folder:" + samples.TRAIN_DIR
  c.data.gt_size = 48
  c.data.cache = True
  c.optim.learning_rate = 1e-3
  c.optim.schedule = "cosine"
  c.optim.warmup_steps = 50
  c.eval.datasets = "folder:" + samples.VAL_DIR
  return c
