"""EDSR-baseline x2 (64 features, 16 blocks) with BasicSR's hyper-parameters
(train_EDSR_Mx2.yml), DIV2K via tfds.

  python -m jaxsr.main --config=configs/edsr_x2.py --workdir=/tmp/edsr_x2 \
      --config.data.data_dir=/path/to/tensorflow_datasets

Full EDSR: --config.model.num_feat=256 --config.model.num_block=32 --config.model.res_scale=0.1
"""

from jaxsr import config_base


def get_config():
  c = config_base.base_config()
  c.scale = 2
  c.batch_size = 16
  c.num_train_steps = 300_000
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.checkpoint_every_steps = 5_000
  c.ema_decay = 0.0
  c.model.name = "edsr"
  c.model.num_feat = 64
  c.model.num_block = 16
  c.model.res_scale = 1.0
  c.data.train = "tfds:div2k/bicubic_x2"
  c.data.gt_size = 96
  c.loss.pixel = "l1"
  c.optim.learning_rate = 1e-4
  c.optim.schedule = "multistep"
  c.optim.milestones = (200_000,)
  c.optim.gamma = 0.5
  c.eval.datasets = "tfds:div2k/bicubic_x2:validation"
  return c
