"""The community families of issue #20 as a whole: every golden state dict (written by
spandrel 0.4.2's modules, tests/data/make_<family>_golden.py) is claimed by its own family
only, and `--arch=auto` through a `.pth` file gives spandrel's output; each family's config
trains a tiny model and resumes exactly, and one of them trains as a GAN generator against the
U-Net SN discriminator."""

import json

import jax
import numpy as np
import pytest

from jaxsr import config_base
from jaxsr.interop import torch_io
from jaxsr import train
from jaxsr.interop import detect as detect_lib
from jaxsr.interop import load as interop_load

from tests import utils
from tests.conftest import DATA_DIR

FAMILIES = ("span", "rcan", "omnisr", "plksr", "hat", "dat")
REPO = DATA_DIR.parents[1]


def _golden(family):
  path = DATA_DIR / f"{family}_golden.npz"
  if not path.exists():
    pytest.skip(f"{path.name} not written yet")
  with np.load(path) as f:
    return dict(f)


def _variants(golden):
  """{variant: (state dict, hparams)}."""
  out = {}
  for key in golden:
    if key.endswith("/hparams"):
      name = key[:-len("/hparams")]
      prefix = f"{name}/sd/"
      state_dict = {k[len(prefix):]: v for k, v in golden.items() if k.startswith(prefix)}
      out[name] = (state_dict, json.loads(str(golden[key])))
  return out


def _same(a, b):
  """Equal hyper-parameters (JSON lists read as tuples)."""
  norm = lambda d: {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
  return norm(a) == norm(b)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_variant_is_detected_as_its_own_family_only(family):
  for name, (state_dict, expected) in _variants(_golden(family)).items():
    arch, hparams = detect_lib.detect(state_dict)
    expected = dict(expected)
    assert arch == expected.pop("arch", family), name
    assert _same(hparams, expected), (name, hparams, expected)


@pytest.mark.numerics
@pytest.mark.parametrize("family", FAMILIES)
def test_auto_conversion_of_a_pth_gives_spandrels_output(family, tmp_path):
  golden = _golden(family)
  name = sorted(_variants(golden))[0]
  state_dict, _ = _variants(golden)[name]
  torch_io.save_state_dict(tmp_path / "model.pth", state_dict)
  loaded = interop_load.load_variables(str(tmp_path / "model.pth"))
  model = interop_load.create_module(loaded.arch, loaded.hparams)
  inputs = sorted(k for k in golden if k.startswith(f"{name}/input"))
  x, expected = golden[inputs[0]], golden[inputs[0].replace("/input", "/output")]
  utils.assert_close(jax.jit(model.apply)(loaded.variables, x), expected, np.float32,
                     ops=utils.network_ops(loaded.variables))


# configs/<file> with a tiny model of the family (every field the family's detect reads).
TINY = {
    "span_x4": dict(feature_channels=4),
    "rcan_x4": dict(n_resgroups=2, n_resblocks=2, n_feats=8, reduction=4),
    "omnisr_x4": dict(num_feat=8, res_num=1, block_num=1, window_size=4),
    "realplksr_x4": dict(dim=8, n_blocks=2, kernel_size=5, norm_groups=2),
    "hat_x4": dict(embed_dim=8, depths=(2,), num_heads=(2,), window_size=4, compress_ratio=2,
                   squeeze_factor=2, num_feat=8),
    "dat_x4": dict(embed_dim=32, depth=(2,), num_heads=(2,), split_size=(2, 4)),
}


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
  return utils.make_image_folder(tmp_path_factory.mktemp("families") / "train", count=4,
                                 size=(40, 48), seed=5)


def _tiny_config(name, train_dir, **overrides):
  path = REPO / "configs" / f"{name}.py"
  if not path.exists():
    pytest.skip(f"configs/{name}.py not written yet")
  config = config_base.config_from_file(str(path))
  config.model.update(TINY[name])
  tiny = utils.tiny_config(train_dir, scale=config.scale)
  for key in ("batch_size", "num_train_steps", "log_every_steps", "eval_every_steps",
              "checkpoint_every_steps", "data", "eval"):
    config[key] = tiny[key]
  config.num_train_steps = 2
  config.update(overrides)
  return config


@pytest.mark.parametrize("name", sorted(TINY))
def test_config_trains_and_resumes_exactly(name, train_dir, tmp_path):
  config = _tiny_config(name, train_dir)
  state = train.train_and_evaluate(config, str(tmp_path / "straight"))
  assert int(state.step) == 2
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(jax.device_get(state.params)))
  config.num_train_steps = 1
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  config.num_train_steps = 2
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  utils.assert_trees_equal(utils.saved_state(tmp_path / "straight", 2)[0],
                           utils.saved_state(tmp_path / "resumed", 2)[0])


def test_a_family_trains_as_the_gan_generator_with_the_unet_discriminator(train_dir, tmp_path):
  config = config_base.gan_config()
  tiny = _tiny_config("span_x4", train_dir)
  for key in ("scale", "model", "batch_size", "num_train_steps", "log_every_steps",
              "eval_every_steps", "checkpoint_every_steps", "data", "eval"):
    config[key] = tiny[key]
  config.discriminator.name, config.discriminator.num_feat = "unet_sn", 4
  config.loss.perceptual_weight = 0.0  # no VGG19 weights offline
  state = train.train_and_evaluate(config, str(tmp_path / "gan"))
  assert int(state.step) == 2
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(jax.device_get(
      (state.params, state.d_params))))
