"""Real-ESRNet x4plus with Real-ESRGAN's hyper-parameters (options/train_realesrnet_x4plus.yml):
RRDBNet 64x23 trained with L1 on pairs made by Real-ESRGAN's second-order degradations (blur,
resize, noise, JPEG, twice; computed on the accelerator, `jaxsr/degradations`), USM-sharpened
GT, a 180-pair pool, Adam 2e-4 (0.9, 0.99), EMA 0.999, 1M steps, batch 12 per device
(Real-ESRGAN: 12 per GPU; `batch_size` is global: 48 on 4 devices, with queue_size 720).
Real-ESRGAN starts it from ESRGAN's PSNR model; HR from DIV2K (+ Flickr2K, OST) in its
multi-scale form (each image also at x0.75, x0.5, x1/3 and shortest edge 400).

  python -m jaxsr.main --config=configs/realesrnet_x4plus.py --workdir=/tmp/realesrnet_x4plus \
      --config.init_from=basicsr:/path/to/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth \
      --config.data.data_dir=/path/to/tensorflow_datasets

Any folder of HR images works too: `--config.data.train=folder:/data/hr_images`. See what the
degradations make of your images first: `python -m jaxsr.degrade --config=configs/realesrnet_x4plus.py
--input=/data/hr_images --output=/tmp/degraded`.
"""

from jaxsr import config_base


def get_config():
  c = config_base.realworld_config()
  c.scale = 4
  c.batch_size = 12
  c.num_train_steps = 1_000_000
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.checkpoint_every_steps = 5_000
  c.ema_decay = 0.999
  c.model.name = "rrdbnet"
  c.model.num_feat = 64
  c.model.num_block = 23
  c.model.num_grow_ch = 32
  c.data.train = "tfds:div2k/bicubic_x4"  # Its HR images; the LR is made by the degradations.
  c.data.gt_size = 256
  c.data.crop_pad_size = 400
  c.data.multiscale_factors = (1.0, 0.75, 0.5, 1 / 3)
  c.data.multiscale_shortest_edge = 400
  c.loss.pixel = "l1"
  c.loss.pixel_weight = 1.0
  c.optim.learning_rate = 2e-4
  c.optim.b1, c.optim.b2 = 0.9, 0.99
  c.optim.schedule = "multistep"
  c.optim.milestones = (1_000_000,)
  c.optim.gamma = 0.5
  c.degradation.queue_size = 180
  c.eval.datasets = "tfds:div2k/bicubic_x4:validation"
  return c
