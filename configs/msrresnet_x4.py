"""MSRResNet x4 with BasicSR's hyper-parameters (train_MSRResNet_x4.yml), DIV2K via tfds.

  python -m jaxsr.main --config=configs/msrresnet_x4.py --workdir=/tmp/msrresnet_x4 \
      --config.data.data_dir=/path/to/tensorflow_datasets

Own images instead of DIV2K: --config.data.train=folder:/path/to/hr_images
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
  c.model.name = "msrresnet"
  c.model.num_feat = 64
  c.model.num_block = 16
  c.data.train = "tfds:div2k/bicubic_x4"
  c.data.gt_size = 128
  c.loss.pixel = "l1"
  c.optim.learning_rate = 2e-4
  c.optim.schedule = "cosine"  # CosineAnnealingRestartLR, one period, eta_min 1e-7.
  c.optim.min_lr_ratio = 1e-7 / 2e-4
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
