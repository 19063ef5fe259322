"""realesr-general-x4v3: Real-ESRGAN's compact general-scene model, SRVGGNetCompact (64
features, 32 convolutions, PReLU) x4, trained like configs/realesrgan_x4plus.py (same
degradations, U-Net SN discriminator, L1 + perceptual + GAN 0.1, Adam 1e-4). Start it from a
PSNR-trained SRVGGNetCompact (or the released weights, imported with jaxsr.convert --arch=srvgg).

  python -m jaxsr.main --config=configs/realesr_general_x4v3.py --workdir=/tmp/realesr_general \
      --config.init_from=basicsr:/path/to/realesr-general-x4v3.pth \
      --config.loss.vgg_weights=/path/to/vgg19-dcbb9e9d.pth \
      --config.data.data_dir=/path/to/tensorflow_datasets
"""

import importlib.util
import os


def _realesrgan_x4plus():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "realesrgan_x4plus.py")
  spec = importlib.util.spec_from_file_location("realesrgan_x4plus", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config():
  c = _realesrgan_x4plus().get_config()
  c.model = {"name": "srvgg", "num_feat": 64, "num_conv": 32, "act_type": "prelu"}
  return c
