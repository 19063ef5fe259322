"""SPAN x4 (48 feature channels: 426,288 parameters re-parameterised, 1,840,488 trained) with
traiNNer-redux's SPAN_fromscratch.yml recipe: LR patch 64, batch 64 (the paper's, per that
file; it defaults to 16 for one consumer GPU), AdamW 5e-4 (0.9, 0.99) without weight decay,
MultiStepLR [200k, 400k, 600k, 800k] x 0.5, 1M steps, EMA 0.999; L1 pixel loss (traiNNer-redux
uses MS-SSIM + L1, which jaxsr lacks). DIV2K via tfds (the paper trains on DF2K; NTIRE 2024
adds LSDIR).

  python -m jaxsr.main --config=configs/span_x4.py --workdir=/tmp/span_x4 \
      --config.data.data_dir=/path/to/tensorflow_datasets

The 52-channel SPAN: --config.model.feature_channels=52. traiNNer-redux trains without the
input mean shift: --config.model.norm=False. Released weights (spanx4_ch48.pth, spandrel /
traiNNer-redux .safetensors) as a workdir:
  python -m jaxsr.convert --arch=span --workdir=/tmp/span_x4_released --input=spanx4_ch48.pth
"""

from jaxsr import config_base


def get_config():
  c = config_base.base_config()
  c.scale = 4
  c.batch_size = 64
  c.num_train_steps = 1_000_000
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.checkpoint_every_steps = 5_000
  c.ema_decay = 0.999
  c.model.name = "span"
  c.model.feature_channels = 48
  c.model.norm = True
  c.data.train = "tfds:div2k/bicubic_x4"
  c.data.gt_size = 256  # LR patch 64.
  c.loss.pixel = "l1"
  c.optim.learning_rate = 5e-4
  c.optim.b1, c.optim.b2 = 0.9, 0.99
  c.optim.schedule = "multistep"
  c.optim.milestones = (200_000, 400_000, 600_000, 800_000)
  c.optim.gamma = 0.5
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
