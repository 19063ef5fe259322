"""RealPLKSR x4 (dim 64, 28 blocks, kernel 17, split 0.25, EA, LayerNorm, PixelShuffle;
7,389,680 parameters) with traiNNer-redux's from-scratch recipe (options/train/RealPLKSR/
RealPLKSR_fromscratch.yml): LR patch 48, batch 16, AdamW 2e-4 (0.9, 0.99), no weight decay,
MultiStepLR [100k, 200k, 300k, 400k, 425k] x 0.5, 450k steps, EMA 0.999. traiNNer-redux trains
with MS-SSIM + L1 (alpha 0.1); jaxsr has no MS-SSIM loss, so this uses L1 (the PLKSR paper's
loss). The paper's own setting (PLKSR, DIV2K) is LR patch 96, batch 64:
--config.data.gt_size=384 --config.batch_size=64. DySample instead of PixelShuffle (even scales):
--config.model.dysample=True.

  python -m jaxsr.main --config=configs/realplksr_x4.py --workdir=/tmp/realplksr_x4 \
      --config.data.data_dir=/path/to/tensorflow_datasets

Released weights (spandrel / traiNNer-redux .pth or .safetensors) as a workdir:
  python -m jaxsr.convert --arch=auto --workdir=/tmp/realplksr_x4_released \
      --input=4x_RealPLKSR.pth
"""

from jaxsr import config_base


def get_config():
  c = config_base.base_config()
  c.scale = 4
  c.batch_size = 16
  c.num_train_steps = 450_000
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.checkpoint_every_steps = 5_000
  c.ema_decay = 0.999
  c.model.name = "realplksr"
  c.model.dim = 64
  c.model.n_blocks = 28
  c.model.kernel_size = 17
  c.model.split_ratio = 0.25
  c.model.use_ea = True
  c.model.norm_groups = 4
  c.model.dropout = 0.0
  c.model.dysample = False
  c.model.layer_norm = True
  c.data.train = "tfds:div2k/bicubic_x4"
  c.data.gt_size = 192  # LR patch 48.
  c.loss.pixel = "l1"
  c.optim.learning_rate = 2e-4
  c.optim.b1, c.optim.b2 = 0.9, 0.99
  c.optim.weight_decay = 0.0
  c.optim.schedule = "multistep"
  c.optim.milestones = (100_000, 200_000, 300_000, 400_000, 425_000)
  c.optim.gamma = 0.5
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
