"""The real-world configs (Real-ESRNet, Real-ESRGAN, realesr-general, SwinIR's GAN stage) train
and resume exactly on CPU with tiny models: their recipes (losses, USM targets, pool, D) run end
to end."""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import pytest

from jaxsr import config_base
from jaxsr import train
from jaxsr.models import vgg

from tests import utils
from tests.utils import assert_trees_equal, saved_state

CONFIGS = pathlib.Path(__file__).parent.parent / "configs"
TINY_MODELS = {
    "rrdbnet": {"name": "rrdbnet", "num_feat": 4, "num_block": 1, "num_grow_ch": 4},
    "srvgg": {"name": "srvgg", "num_feat": 4, "num_conv": 2, "act_type": "prelu"},
    "swinir": {"name": "swinir", "embed_dim": 8, "depths": (2,), "num_heads": (2,),
               "window_size": 4, "num_feat": 4, "upsampler": "nearest+conv"},
}


def load_config(name):
  spec = importlib.util.spec_from_file_location(name, CONFIGS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
  return utils.make_image_folder(tmp_path_factory.mktemp("images") / "train", count=5,
                                 size=(40, 56), seed=4)


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("vgg") / "vgg19.h5")
  variables = vgg.TorchvisionFeatures(("conv5_4",)).init(jax.random.key(0),
                                                          jnp.zeros((1, 16, 16, 3)))
  vgg.save_keras_h5(path, jax.device_get(variables["params"]))
  return path


def shrink(config, train_dir, vgg_weights):
  """The recipe of `config` on a tiny model, tiny crops and a few steps."""
  config.model = TINY_MODELS[config.model.name]
  config.batch_size = 4
  config.num_train_steps = 4
  config.log_every_steps = config.checkpoint_every_steps = config.eval_every_steps = 2
  config.data.train = "folder:" + train_dir
  config.data.crop_pad_size, config.data.gt_size = 32, 16
  config.data.multiscale_shortest_edge = 24
  config.data.prefetch = 1
  config.degradation.queue_size = 8
  config.eval.datasets = ""
  if config_base.is_gan(config):
    config.discriminator.num_feat = 4
    config.loss.vgg_weights = vgg_weights  # Random VGG19 (no ImageNet weights offline).
  config_base.validate(config, 1)
  return config


@pytest.mark.parametrize("name", ["realesrnet_x4plus", "realesrgan_x4plus",
                                  "realesr_general_x4v3", "swinir_real_x4"])
def test_realworld_config_trains_and_resumes(name, train_dir, vgg_weights, tmp_path):
  config = shrink(load_config(name), train_dir, vgg_weights)
  state = train.train_and_evaluate(config, str(tmp_path / "straight"))
  assert int(state.step) == 4 and int(state.pool["count"]) == 8
  config.num_train_steps = 2
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  config.num_train_steps = 4
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  assert_trees_equal(saved_state(tmp_path / "straight", 4), saved_state(tmp_path / "resumed", 4))
