"""RRDBNet (ESRGAN's PSNR-oriented RRDB_PSNR) x4 with BasicSR's hyper-parameters
(train_ESRGAN_x4 pre-training, train_RRDBNet_PSNR_x4.yml), DIV2K via tfds.

  python -m jaxsr.main --config=configs/rrdbnet_psnr_x4.py --workdir=/tmp/rrdbnet_psnr_x4 \
      --config.data.data_dir=/path/to/tensorflow_datasets
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
  c.model.name = "rrdbnet"
  c.model.num_feat = 64
  c.model.num_block = 23
  c.model.num_grow_ch = 32
  c.data.train = "tfds:div2k/bicubic_x4"
  c.data.gt_size = 128
  c.loss.pixel = "l1"
  c.optim.learning_rate = 2e-4
  c.optim.schedule = "multistep"
  c.optim.milestones = (200_000, 400_000, 600_000, 800_000)
  c.optim.gamma = 0.5
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
