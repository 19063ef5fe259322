"""SRGAN x4 (Ledig et al. 2017) on BasicSR's building blocks: SRResNet G (MSRResNet, no BN)
initialised from an MSRResNet PSNR run, VGG-style D at 128x128, content loss = MSE of VGG19
"VGG54" features (relu5_4) scaled by 1/12.75 (weight 1/12.75^2), vanilla GAN 1e-3, Adam 1e-4
(beta1 0.9) for 100k steps then 1e-5 for 100k.

  python -m jaxsr.main --config=configs/msrresnet_x4.py --workdir=/tmp/msrresnet_x4
  python -m jaxsr.main --config=configs/srgan_x4.py --workdir=/tmp/srgan_x4 \
      --config.init_from=/tmp/msrresnet_x4 \
      --config.loss.vgg_weights=/path/to/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 \
      --config.data.data_dir=/path/to/tensorflow_datasets

Differences from the paper: no BatchNorm in G (BasicSR's MSRResNet); 128x128 HR patches (the
VGG-style discriminator takes 128 or 256) instead of 96x96.
"""

from jaxsr import config_base


def get_config():
  c = config_base.gan_config()
  c.scale = 4
  c.batch_size = 16
  c.num_train_steps = 200_000
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.checkpoint_every_steps = 5_000
  c.ema_decay = 0.0  # The paper keeps no EMA.
  c.model.name = "msrresnet"
  c.model.num_feat = 64
  c.model.num_block = 16
  c.discriminator.name = "vgg_style"
  c.discriminator.num_feat = 64
  c.data.train = "tfds:div2k/bicubic_x4"
  c.data.gt_size = 128
  c.loss.pixel_weight = 0.0  # Content is the VGG loss only.
  c.loss.perceptual_weight = 1.0 / 12.75**2
  c.loss.perceptual_layers = "relu5_4:1.0"
  c.loss.perceptual_criterion = "l2"
  c.loss.gan_type = "vanilla"
  c.loss.gan_weight = 1e-3
  for optim in (c.optim, c.optim_d):
    optim.learning_rate = 1e-4
    optim.b1, optim.b2 = 0.9, 0.999
    optim.schedule = "multistep"
    optim.milestones = (100_000,)
    optim.gamma = 0.1
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
