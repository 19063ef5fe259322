"""ESRGAN x4 with BasicSR's hyper-parameters (options/train/ESRGAN/train_ESRGAN_x4.yml):
RRDBNet G initialised from a PSNR-oriented RRDBNet run, VGG-style D at 128x128, L1 1e-2 +
VGG19 conv5_4 perceptual 1.0 + relativistic-average GAN 5e-3, Adam 1e-4 for both, halved at
50k/100k/200k/300k of 400k steps, EMA 0.999.

  python -m jaxsr.main --config=configs/rrdbnet_psnr_x4.py --workdir=/tmp/rrdbnet_psnr_x4
  python -m jaxsr.main --config=configs/esrgan_x4.py --workdir=/tmp/esrgan_x4 \
      --config.init_from=/tmp/rrdbnet_psnr_x4 \
      --config.loss.vgg_weights=/path/to/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 \
      --config.data.data_dir=/path/to/tensorflow_datasets

VGG19 weights: the Keras file above or torchvision's vgg19-dcbb9e9d.pth (see README); online,
leaving loss.vgg_weights empty fetches the Keras file into ~/.keras/models.
"""

from jaxsr import config_base

MILESTONES = (50_000, 100_000, 200_000, 300_000)


def get_config():
  c = config_base.gan_config()
  c.scale = 4
  c.batch_size = 16
  c.num_train_steps = 400_000
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.checkpoint_every_steps = 5_000
  c.ema_decay = 0.999
  c.model.name = "rrdbnet"
  c.model.num_feat = 64
  c.model.num_block = 23
  c.model.num_grow_ch = 32
  c.discriminator.name = "vgg_style"
  c.discriminator.num_feat = 64
  c.data.train = "tfds:div2k/bicubic_x4"
  c.data.gt_size = 128
  c.loss.pixel = "l1"
  c.loss.pixel_weight = 1e-2
  c.loss.perceptual_weight = 1.0
  c.loss.perceptual_layers = "conv5_4:1.0"  # Before the ReLU, as ESRGAN.
  c.loss.perceptual_criterion = "l1"
  c.loss.gan_type = "ragan"
  c.loss.gan_weight = 5e-3
  for optim in (c.optim, c.optim_d):
    optim.learning_rate = 1e-4
    optim.b1, optim.b2 = 0.9, 0.99
    optim.schedule = "multistep"
    optim.milestones = MILESTONES
    optim.gamma = 0.5
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
