"""Real-world SwinIR x4 (SwinIR-M 'nearest+conv', 11,715,559 parameters) trained with
Real-ESRGAN's recipe: the degradations of configs/realesrnet_x4plus.py, then the GAN stage of
configs/realesrgan_x4plus.py (U-Net discriminator with spectral norm, L1 + VGG19 perceptual +
GAN 0.1, Adam 1e-4, EMA 0.999) with this generator in place of RRDBNet. The argument after ':'
picks the stage: 'gan' (the default) or 'psnr' (the L1-only first stage).

  python -m jaxsr.main --config=configs/swinir_real_x4.py:psnr --workdir=/tmp/swinir_realnet
  python -m jaxsr.main --config=configs/swinir_real_x4.py --workdir=/tmp/swinir_real_x4 \
      --config.init_from=/tmp/swinir_realnet \
      --config.loss.vgg_weights=/path/to/vgg19-dcbb9e9d.pth \
      --config.data.data_dir=/path/to/tensorflow_datasets

Fine-tuning the released GAN model (a U-Net D of your own or Real-ESRGAN's netD):
  python -m jaxsr.main --config=configs/swinir_real_x4.py --workdir=/tmp/swinir_finetune \
      --config.init_from=basicsr:/path/to/003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth \
      --config.data.train=folder:/data/my_hr_images --config.loss.vgg_weights=/path/to/vgg19.pth
SwinIR-L (28,013,059 parameters): --config.model.embed_dim=240
--config.model.depths=(6,6,6,6,6,6,6,6,6) --config.model.num_heads=(8,8,8,8,8,8,8,8,8)
--config.model.resi_connection=3conv.
"""

import os

from jaxsr import config_base

STAGES = {"psnr": "realesrnet_x4plus", "gan": "realesrgan_x4plus"}


def get_config(stage: str = "gan"):
  if stage not in STAGES:
    raise ValueError(f"swinir_real_x4: stage {stage!r} is not one of {sorted(STAGES)} "
                     "(--config=configs/swinir_real_x4.py:psnr or :gan)")
  c = config_base.config_from_file(
      os.path.join(os.path.dirname(__file__), f"{STAGES[stage]}.py"))
  c.model = dict(name="swinir", embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6,
                 window_size=8, mlp_ratio=2.0, upsampler="nearest+conv", resi_connection="1conv",
                 img_range=1.0, drop_path_rate=0.1)
  return c
