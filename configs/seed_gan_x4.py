"""The project seed's GAN x4: its encoder-decoder generator (`SeedGenerator`: strided down
convolutions, transposed-convolution up-sampling, fusion with the upsampled LR input, 9x9
head/tail, BatchNorm + LeakyReLU) against its strided-convolution discriminator, trained with
content (L1 + VGG19 features) + style (Gram) + adversarial losses and Adam(2e-4, beta1 0.5), as
the seed's design describes. G starts from a PSNR run of the same generator
(configs/seed_psnr_x4.py).

  python -m jaxsr.main --config=configs/seed_psnr_x4.py --workdir=/tmp/seed_psnr_x4
  python -m jaxsr.main --config=configs/seed_gan_x4.py --workdir=/tmp/seed_gan_x4 \
      --config.init_from=/tmp/seed_psnr_x4 \
      --config.loss.vgg_weights=/path/to/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 \
      --config.data.train=folder:/data/sr_train --config.eval.datasets=folder:/data/Set5

`folder:` reads images recursively, so /data/sr_train may hold T91/, BSD200/, General100/.
Without VGG19 weights: --config.loss.perceptual_weight=0 --config.loss.style_weight=0.
"""

from jaxsr import config_base
from jaxsr import samples


def get_config():
  c = config_base.gan_config()
  c.scale = 4
  c.batch_size = 16
  c.model.name = "seed"  # Must match the PSNR run it starts from.
  c.model.num_feat = 64
  c.data.train = "folder:" + samples.TRAIN_DIR
  c.data.gt_size = 128
  c.data.cache = True
  c.eval.datasets = "folder:" + samples.VAL_DIR
  c.num_train_steps = 100_000
  c.log_every_steps = 100
  c.eval_every_steps = 2_000
  c.checkpoint_every_steps = 2_000
  c.ema_decay = 0.999
  c.discriminator.name = "seed"
  c.discriminator.num_feat = 64
  c.loss.pixel = "l1"
  c.loss.pixel_weight = 1e-2
  c.loss.perceptual_weight = 1.0
  c.loss.style_weight = 100.0
  c.loss.perceptual_layers = "relu2_2:0.25,relu3_4:0.5,relu4_4:1.0"
  c.loss.perceptual_criterion = "l1"
  c.loss.gan_type = "vanilla"
  c.loss.gan_weight = 5e-3
  c.loss.real_label = 0.9  # One-sided label smoothing.
  for optim in (c.optim, c.optim_d):
    optim.learning_rate = 2e-4
    optim.b1, optim.b2 = 0.5, 0.999
    optim.schedule = "constant"
  return c
