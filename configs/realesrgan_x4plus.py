"""Real-ESRGAN x4plus with Real-ESRGAN's hyper-parameters (options/train_realesrgan_x4plus.yml):
RRDBNet 64x23 G started from Real-ESRNet, U-Net discriminator with spectral norm (64 features,
skips), L1 1.0 + VGG19 perceptual (conv1_2 / conv2_2 / conv3_4 / conv4_4 / conv5_4 weighted
0.1 / 0.1 / 1 / 1 / 1, before ReLU) on the USM-sharpened GT + vanilla GAN 0.1 on the plain GT,
Adam 1e-4 (0.9, 0.99) for both, EMA 0.999, 400k steps, batch 12 per device; the same
degradations as configs/realesrnet_x4plus.py.

  python -m jaxsr.main --config=configs/realesrnet_x4plus.py --workdir=/tmp/realesrnet_x4plus
  python -m jaxsr.main --config=configs/realesrgan_x4plus.py --workdir=/tmp/realesrgan_x4plus \
      --config.init_from=/tmp/realesrnet_x4plus \
      --config.loss.vgg_weights=/path/to/vgg19-dcbb9e9d.pth \
      --config.data.data_dir=/path/to/tensorflow_datasets

Fine-tuning the released models on your own HR images (G and D from Real-ESRGAN's files):
  python -m jaxsr.main --config=configs/realesrgan_x4plus.py --workdir=/tmp/finetune \
      --config.init_from=basicsr:/path/to/RealESRGAN_x4plus.pth \
      --config.init_d_from=basicsr:/path/to/RealESRGAN_x4plus_netD.pth \
      --config.data.train=folder:/data/my_hr_images --config.loss.vgg_weights=/path/to/vgg19.pth
"""

from jaxsr import config_base

PERCEPTUAL_LAYERS = "conv1_2:0.1,conv2_2:0.1,conv3_4:1.0,conv4_4:1.0,conv5_4:1.0"


def get_config():
  c = config_base.realworld_config(gan=True)
  c.scale = 4
  c.batch_size = 12
  c.num_train_steps = 400_000
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.checkpoint_every_steps = 5_000
  c.ema_decay = 0.999
  c.model.name = "rrdbnet"
  c.model.num_feat = 64
  c.model.num_block = 23
  c.model.num_grow_ch = 32
  c.discriminator.name = "unet_sn"
  c.discriminator.num_feat = 64
  c.discriminator.skip_connection = True
  c.data.train = "tfds:div2k/bicubic_x4"  # Its HR images; the LR is made by the degradations.
  c.data.gt_size = 256
  c.data.crop_pad_size = 400
  c.data.multiscale_factors = (1.0, 0.75, 0.5, 1 / 3)
  c.data.multiscale_shortest_edge = 400
  c.loss.pixel = "l1"
  c.loss.pixel_weight = 1.0
  c.loss.perceptual_weight = 1.0
  c.loss.perceptual_layers = PERCEPTUAL_LAYERS
  c.loss.perceptual_criterion = "l1"
  c.loss.gan_type = "vanilla"
  c.loss.gan_weight = 0.1
  for optim in (c.optim, c.optim_d):
    optim.learning_rate = 1e-4
    optim.b1, optim.b2 = 0.9, 0.99
    optim.schedule = "multistep"
    optim.milestones = (400_000,)
    optim.gamma = 0.5
  c.degradation.queue_size = 180
  c.degradation.l1_gt_usm = True
  c.degradation.percep_gt_usm = True
  c.degradation.gan_gt_usm = False
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
