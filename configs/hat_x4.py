"""HAT x4 (20,772,507 parameters; the paper's 20.8M) with the official recipe (XPixelGroup/HAT
options/train/train_HAT_SRx2_from_scratch.yml at x4, as train_HAT_SRx4_ImageNet_from_scratch.yml
trains it): embed 180, depths and heads 6 x 6, window 16, compress_ratio 3, squeeze_factor 30,
overlap_ratio 0.5, mlp_ratio 2; LR patch 64 (HR 256), batch 32 (4 per GPU x 8), L1, Adam 2e-4
(0.9, 0.99), MultiStepLR [250k, 400k, 450k, 475k] x 0.5, 500k steps, EMA 0.999; DIV2K x4 here
(the paper: DF2K).

  python -m jaxsr.main --config=configs/hat_x4.py --workdir=/tmp/hat_x4 \
      --config.data.data_dir=/path/to/tensorflow_datasets

The paper's x4 model is fine-tuned from its x2 one: lr 1e-4, MultiStepLR [125k, 200k, 225k,
240k], 250k steps. HAT-S: --config.model.embed_dim=144 --config.model.compress_ratio=24
--config.model.squeeze_factor=24; HAT-L: depths and num_heads (6,) * 12. bfloat16 with
--config.dtype=bfloat16 (LayerNorm, attention logits and softmax stay float32).
The released weights as a workdir (eval, upscale, or --config.init_from=<workdir>):
  python -m jaxsr.convert --arch=hat --workdir=/tmp/hat_x4_released --input=HAT_SRx4.pth
"""

from jaxsr import config_base


def get_config():
  c = config_base.base_config()
  c.scale = 4
  c.batch_size = 32
  c.num_train_steps = 500_000
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.checkpoint_every_steps = 5_000
  c.ema_decay = 0.999
  c.model.name = "hat"
  c.model.embed_dim = 180
  c.model.depths = (6, 6, 6, 6, 6, 6)
  c.model.num_heads = (6, 6, 6, 6, 6, 6)
  c.model.window_size = 16
  c.model.compress_ratio = 3
  c.model.squeeze_factor = 30
  c.model.conv_scale = 0.01
  c.model.overlap_ratio = 0.5
  c.model.mlp_ratio = 2.0
  c.model.img_range = 1.0
  c.model.resi_connection = "1conv"
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
