"""OmniSR x4 (Omni-SR, 805,376 parameters; the paper's 792K) with the official recipe
(Omni-SR train_yamls/train_OmniSR_X4_DIV2K.yaml): 64 features, 5 OSAGs of 1 OSA block, window
8, relative position bias; DIV2K, LR patch 64, batch 64, flips and rotations, L1, AdamW 5e-4
(0.9, 0.999), weight decay 1e-4, 1000 epochs of 800 steps (DIV2K's 800 images x64 per epoch) =
800k steps, the learning rate halved at epochs 250, 500, 750 (200k, 400k, 600k steps); no EMA.

  python -m jaxsr.main --config=configs/omnisr_x4.py --workdir=/tmp/omnisr_x4 \
      --config.data.data_dir=/path/to/tensorflow_datasets

The official code trains on images in [-1, 1]; this config, like spandrel and traiNNer-redux,
trains on [0, 1] (model.signed_range=False). Released or community weights as a workdir:
  python -m jaxsr.convert --arch=omnisr --workdir=/tmp/omnisr_x4_released --input=OmniSR_X4.pth
(the official Omni-SR checkpoints expect [-1, 1]: set model.signed_range = True in the
workdir's config.py to run them as their authors did.)
"""

from jaxsr import config_base


def get_config():
  c = config_base.base_config()
  c.scale = 4
  c.batch_size = 64
  c.num_train_steps = 800_000
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.checkpoint_every_steps = 5_000
  c.ema_decay = 0.0  # The official trainer keeps no EMA.
  c.model.name = "omnisr"
  c.model.num_feat = 64
  c.model.res_num = 5
  c.model.block_num = 1
  c.model.window_size = 8
  c.model.pe = True
  c.model.bias = True
  # Recompute each scanned OSAG's activations in the backward pass: the scan then keeps only
  # the OSAGs' inputs instead of stacking every intermediate. On XLA:CPU the step is 2.3x
  # faster (batch 4, LR 64: 2.08 s vs 4.85 s; BENCHMARKS.md), OmniSR's many small
  # element-wise layers being bound by memory traffic, not by the recomputation.
  c.model.remat = True
  c.data.train = "tfds:div2k/bicubic_x4"
  c.data.gt_size = 256  # LR patch 64.
  c.loss.pixel = "l1"
  c.optim.learning_rate = 5e-4
  c.optim.b1, c.optim.b2 = 0.9, 0.999
  c.optim.weight_decay = 1e-4  # AdamW.
  c.optim.schedule = "multistep"
  c.optim.milestones = (200_000, 400_000, 600_000)
  c.optim.gamma = 0.5
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
