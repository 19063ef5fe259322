"""BasicSR / Real-ESRGAN weight import (`jaxsr.convert`) against PyTorch outputs, and the
SRVGGNetCompact model.

The fixtures in tests/data/basicsr/ were written by the real PyTorch architectures
(tests/data/make_basicsr_golden.py); torch is not needed here. Outputs match PyTorch's float32
outputs within rounding of the network's accumulations (`utils.network_ops`); imported weights
are copies, compared exactly.
"""

import importlib.util
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import builders
from jaxsr import checkpointing
from jaxsr import config_base
from jaxsr import convert
from jaxsr import evaluate
from jaxsr import models
from jaxsr import sharding
from jaxsr.interop import torch_io
from jaxsr import train
from jaxsr.interop import detect as detect_lib
from jaxsr.interop import load as interop_load
from jaxsr.interop import variables as interop_variables
from jaxsr.models import discriminators
from jaxsr.models import srvgg

from tests import utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GENERATORS = {"msrresnet_x4": "msrresnet", "msrresnet_x3": "msrresnet", "edsr_x2": "edsr",
              "rrdbnet_x4": "rrdbnet", "rrdbnet_x2": "rrdbnet", "srvgg_x4": "srvgg"}


def _fixture(data_dir, name):
  """(.pth path, input [B, H, W, C] float32 in [0, 1], torch output, torch kwargs)."""
  golden = np.load(data_dir / "basicsr" / f"{name}.npz")
  return (str(data_dir / "basicsr" / f"{name}.pth"), golden["input"].astype(np.float32) / 255,
          golden["output"], json.loads(str(golden["hparams"])))


def _expected_hparams(torch_kwargs):
  """BasicSR constructor kwargs in jaxsr names ('upscale' -> 'scale')."""
  return {("scale" if k == "upscale" else k): v for k, v in torch_kwargs.items()}


def _apply(variables, config, x):
  return np.asarray(jax.jit(builders.make_apply_fn(builders.model_from_config(config)))(
      variables, x))


def _assert_gives_pytorch_output(variables, config, x, expected):
  """Within float32 rounding of the network, relative to the largest output (up to ~2)."""
  utils.assert_close(_apply(variables, config, x), expected,
                     ops=utils.network_ops(variables))


@pytest.mark.numerics
@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_converted_generator_matches_pytorch_through_eval_restore(data_dir, tmp_path, name):
  path, x, expected, torch_kwargs = _fixture(data_dir, name)
  config = convert.convert(path, GENERATORS[name], str(tmp_path))
  hparams = {k: v for k, v in config.model.items() if k != "name"}
  assert {**hparams, "scale": config.scale} == _expected_hparams(torch_kwargs)
  with open(tmp_path / "config.json") as f:
    assert json.load(f)["model"] == config.model.to_dict()
  variables, step = evaluate.restore_eval_variables(
      config, str(tmp_path), builders.model_from_config(config))
  assert step == 0
  _assert_gives_pytorch_output(variables, config, x, expected)


@pytest.mark.exact("imported weights and statistics are copies of the .pth values")
@pytest.mark.numerics
def test_converted_discriminator_matches_pytorch_and_is_saved_as_d_params(data_dir, tmp_path):
  path, x, expected, torch_kwargs = _fixture(data_dir, "vgg_discriminator")
  loaded = interop_load.load_variables(path, "vgg_discriminator")
  hparams, variables = loaded.hparams, loaded.variables
  assert hparams == torch_kwargs
  assert set(variables) == {"params", "batch_stats"}
  np.testing.assert_array_equal(variables["batch_stats"]["bn1_0"]["var"],
                                torch_io.select_params(torch_io.load_state_dict(path))[
                                    "bn1_0.running_var"])
  disc = interop_load.create_module("vgg_discriminator", hparams)
  logits = jax.jit(lambda v, x: disc.apply(v, x, train=False))(variables, x)
  utils.assert_close(logits, expected, ops=utils.network_ops(variables))

  config = convert.write_workdir(str(tmp_path), "vgg_discriminator", hparams, variables)
  assert config_base.is_gan(config) and config.discriminator.name == "vgg_style"
  assert config.data.gt_size == 128 and config.discriminator.num_feat == 1
  saved, _ = utils.saved_state(tmp_path)
  assert sorted(saved) == ["d_model_state", "d_params", "step"]
  utils.assert_trees_equal(saved["d_params"], variables["params"])


def _zeros_like(abstract):
  """Zero arrays shaped like a tree of ShapeDtypeStructs."""
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), abstract)


@pytest.mark.exact("imported weights and u / v vectors are copies of the .pth values")
@pytest.mark.numerics
def test_converted_unet_discriminator_matches_pytorch_eval_mode(data_dir, tmp_path):
  """Real-ESRGAN's UNetDiscriminatorSN after training-mode forwards: torch's eval mode divides
  by sigma = u^T W v with the stored u and v, so both must be imported."""
  path, x, expected, torch_kwargs = _fixture(data_dir, "unet_discriminator")
  loaded = interop_load.load_variables(path, "unet_discriminator")
  hparams, variables = loaded.hparams, loaded.variables
  assert hparams == torch_kwargs
  state_dict = torch_io.select_params(torch_io.load_state_dict(path))
  np.testing.assert_array_equal(variables["batch_stats"]["conv3"]["u"],
                                state_dict["conv3.weight_u"])
  assert variables["batch_stats"]["conv3"]["v"].shape == state_dict["conv3.weight_v"].shape
  disc = interop_load.create_module("unet_discriminator", hparams)
  apply = jax.jit(lambda v, x: disc.apply(v, x, train=False))
  utils.assert_close(apply(variables, x), expected, ops=utils.network_ops(variables))
  # The stored v matters: recomputing it from u (no stored v) gives other logits.
  recomputed = jax.tree.map(lambda a: a, variables)
  for name, stats in recomputed["batch_stats"].items():
    stats["v"] = discriminators.spectral_normalize(
        variables["params"][name]["kernel"], stats["u"], False)[2]
  assert np.max(np.abs(apply(recomputed, x) - expected)) > 1e-4
  no_skip = interop_load.load_variables(path, "unet_discriminator",
                                        skip_connection=False).hparams
  assert no_skip["skip_connection"] is False

  # The converted workdir holds d_params / d_model_state that init_d_from reads back.
  config = convert.convert(path, "unet_discriminator", str(tmp_path))
  assert config.discriminator.name == "unet_sn" and config.discriminator.num_feat == 4
  assert config.discriminator.skip_connection
  like = _zeros_like(interop_load.abstract_variables("unet_discriminator", hparams))
  utils.assert_trees_equal(
      jax.device_get(train.load_init_d_variables(str(tmp_path), like, "unet_sn")), variables)


def test_unet_discriminator_wrong_keys_and_shapes_are_clear_errors(data_dir, tmp_path):
  path = _fixture(data_dir, "unet_discriminator")[0]
  with pytest.raises(ValueError, match=r"Not a unet_discriminator state dict: no "
                                       r"'conv0.weight'"):
    interop_load.load_variables(_fixture(data_dir, "vgg_discriminator")[0],
                                   "unet_discriminator")
  state_dict = torch_io.select_params(torch_io.load_state_dict(path))
  like = interop_load.abstract_variables("unet_discriminator",
                                    detect_lib.read_hparams("unet_discriminator", state_dict))
  del state_dict["conv3.weight_v"]
  state_dict["conv2.weight_u"] = np.zeros(5, np.float32)
  with pytest.raises(ValueError) as error:
    interop_variables.state_dict_to_variables(state_dict, like, "netD.pth")
  assert str(error.value) == (
      "netD.pth does not fit the model:\n"
      "  missing (1): batch_stats/conv3/v\n"
      "  shape mismatch (1): conv2.weight_u: (5,) (as batch_stats/conv2/u) vs (16,)")

  # init_d_from: one message naming the option and the file.
  wider = _zeros_like(interop_load.abstract_variables(
      "unet_discriminator", dict(num_in_ch=3, num_feat=8)))
  source = interop_load.BASICSR_PREFIX + path
  with pytest.raises(ValueError, match=rf"^init_d_from={re.escape(source)}: {re.escape(path)} "
                                       r"\(unet_discriminator\) does not fit the model:\n"
                                       r"  shape mismatch \(27\): conv0.weight"):
    train.load_init_d_variables(source, wider, "unet_sn")
  with pytest.raises(ValueError, match=rf"^init_d_from={re.escape(source)}: Not a "
                                       r"vgg_discriminator state dict: no 'conv0_0.weight'"):
    train.load_init_d_variables(source, wider, "vgg_style")
  with pytest.raises(ValueError, match=r"Discriminator 'seed' has no foreign counterpart"):
    train.load_init_d_variables(source, wider, "seed")
  generator = str(tmp_path / "g")  # A generator's workdir holds no discriminator.
  convert.convert(_fixture(data_dir, "edsr_x2")[0], "edsr", generator)
  with pytest.raises(ValueError, match=rf"^init_d_from={re.escape(generator)}: .* holds no "
                                       r"'d_params'"):
    train.load_init_d_variables(generator, wider, "unet_sn")
  with pytest.raises(ValueError, match="unknown config key 'init_d_from'"):
    psnr = config_base.base_config()
    psnr.init_d_from = source
    config_base.validate(psnr)


@pytest.mark.numerics
def test_params_ema_is_preferred_and_key_forces_params(data_dir):
  path, x, expected, _ = _fixture(data_dir, "msrresnet_x3")  # Holds params and params_ema.
  config = convert.make_config("msrresnet",
                               interop_load.load_variables(path, "msrresnet").hparams)
  ema = interop_load.load_variables(path, "msrresnet").variables
  raw = interop_load.load_variables(path, "msrresnet", key="params").variables
  _assert_gives_pytorch_output(ema, config, x, expected)
  assert np.max(np.abs(_apply(raw, config, x) - expected)) > 0.01


def test_command_line_converts_and_main_evaluates(data_dir, tmp_path):
  path, x, expected, _ = _fixture(data_dir, "srvgg_x4")
  workdir = tmp_path / "w"
  utils.run_module("jaxsr.convert", "--from=basicsr", "--arch=srvgg", f"--input={path}",
                   f"--workdir={workdir}", "--key=params")
  spec = importlib.util.spec_from_file_location("converted_config", workdir / "config.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  with open(workdir / "config.json") as f:
    assert json.load(f) == json.loads(config.to_json_best_effort())
  manager = checkpointing.create_manager(str(workdir), read_only=True)
  like = jax.eval_shape(builders.init_variables_fn(builders.model_from_config(config), config),
                        jax.random.key(0))
  variables = checkpointing.restore_generator(
      manager, 0, like, use_ema=True, sharding=sharding.replicated(sharding.create_mesh()))
  _assert_gives_pytorch_output(variables, config, x, expected)
  utils.assert_trees_equal(  # init_from=<converted workdir> reads the same weights.
      jax.device_get(train.load_init_variables(str(workdir), _zero_variables(config))),
      jax.device_get(variables))

  val = utils.make_image_folder(tmp_path / "val", count=1, size=(32, 36))
  utils.run_module("jaxsr.main", "--mode=eval", f"--config={workdir / 'config.py'}",
                   f"--workdir={workdir}", f"--config.eval.datasets=folder:{val}")
  with open(workdir / "eval" / "val_x4.json") as f:
    report = json.load(f)
  assert report["model"] == "srvgg" and report["checkpoint_step"] == 0


def _zero_variables(config):
  """Zero arrays shaped like the variables of `config`'s generator (no init compiled)."""
  init = builders.init_variables_fn(builders.model_from_config(config), config)
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                      jax.eval_shape(init, jax.random.key(0)))


def test_init_from_basicsr_loads_into_a_matching_config(data_dir, tmp_path):
  path = _fixture(data_dir, "msrresnet_x4")[0]
  config = utils.tiny_config(str(tmp_path), scale=4)
  config.model.num_feat, config.model.num_block = 6, 2
  config.init_from = interop_load.BASICSR_PREFIX + path
  variables = train.load_init_variables(config.init_from, _zero_variables(config),
                                        config.model.name, config.scale)
  expected = interop_load.load_variables(path, "msrresnet").variables
  utils.assert_trees_equal(jax.device_get(variables), expected)

  config.model.num_block = 3
  with pytest.raises(ValueError, match=r"does not fit the model:\n  missing \(4\): "
                                       r"params/body_2/conv1/bias"):
    train.load_init_variables(config.init_from, _zero_variables(config), "msrresnet", 4)


def test_wrong_arch_is_a_clear_error(data_dir):
  path = _fixture(data_dir, "rrdbnet_x4")[0]
  with pytest.raises(ValueError, match=r"Not a msrresnet state dict: no "
                                       r"'upconv1.weight'"):
    interop_load.load_variables(path, "msrresnet")
  with pytest.raises(ValueError, match=r"Unknown architecture 'esrgan'.*'rrdbnet'"):
    interop_load.load_variables(path, "esrgan")


def test_every_mismatch_is_listed_in_one_error(data_dir):
  state_dict = torch_io.select_params(torch_io.load_state_dict(
      _fixture(data_dir, "srvgg_x4")[0]))
  like = interop_load.abstract_variables("srvgg", detect_lib.read_hparams("srvgg", state_dict))
  del state_dict["body.3.weight"]
  state_dict["body.9.bias"] = np.zeros(3, np.float32)
  state_dict["body.2.bias"] = np.zeros(7, np.float32)
  with pytest.raises(ValueError) as error:
    interop_variables.state_dict_to_variables(state_dict, like, "srvgg.pth")
  assert str(error.value) == (
      "srvgg.pth does not fit the model:\n"
      "  missing (1): params/body_3/kernel\n"
      "  unexpected (1): body.9.bias\n"
      "  shape mismatch (1): body.2.bias: (7,) (as params/body_2/bias) vs (8,)")


def _zeros(**shapes):
  """A state dict of zeros with the given shapes (keys: '__' for '.')."""
  return {k.replace("__", "."): np.zeros(s, np.float32) for k, s in shapes.items()}


def test_hparams_from_shapes_and_overrides():
  # srvgg: 3 convs at body.0, .2, .4 with ReLU (no weights) -> num_conv 1; 3 * 3^2 = 27 -> x3.
  relu_vgg = _zeros(body__0__weight=(5, 3, 3, 3), body__2__weight=(5, 5, 3, 3),
                    body__4__weight=(27, 5, 3, 3))
  assert detect_lib.read_hparams("srvgg", relu_vgg) == dict(
      scale=3, num_in_ch=3, num_out_ch=3, num_feat=5, num_conv=1, act_type="relu")
  assert detect_lib.read_hparams("srvgg", relu_vgg, scale=1, act_type="leakyrelu") == dict(
      scale=1, num_in_ch=3, num_out_ch=27, num_feat=5, num_conv=1, act_type="leakyrelu")
  # rrdbnet: conv_first takes 3 * 2^2 channels -> pixel-unshuffle 2 -> x2.
  rrdb = _zeros(conv_first__weight=(4, 12, 3, 3), conv_last__weight=(3, 4, 3, 3),
                body__0__rdb1__conv1__weight=(2, 4, 3, 3),
                body__1__rdb1__conv1__weight=(2, 4, 3, 3), conv_body__weight=(4, 4, 3, 3),
                conv_up1__weight=(4, 4, 3, 3), conv_up2__weight=(4, 4, 3, 3))
  assert detect_lib.read_hparams("rrdbnet", rrdb) == dict(
      scale=2, num_in_ch=3, num_out_ch=3, num_feat=4, num_block=2, num_grow_ch=2)
  assert detect_lib.read_hparams("rrdbnet", rrdb, scale=4)["num_in_ch"] == 12
  rrdb["conv_first.weight"] = np.zeros((4, 6, 3, 3), np.float32)
  with pytest.raises(ValueError, match=r"pass it \(--scale\)"):
    detect_lib.read_hparams("rrdbnet", rrdb)
  # edsr: upsample.0 and .2 with 4 * num_feat channels -> x4; res_scale only by override.
  edsr = _zeros(conv_first__weight=(2, 1, 3, 3), body__0__conv1__weight=(2, 2, 3, 3),
                upsample__0__weight=(8, 2, 3, 3), upsample__2__weight=(8, 2, 3, 3),
                conv_last__weight=(1, 2, 3, 3))
  assert detect_lib.read_hparams("edsr", edsr) == dict(
      scale=4, num_in_ch=1, num_out_ch=1, num_feat=2, num_block=1, res_scale=1.0)
  assert detect_lib.read_hparams("edsr", edsr, res_scale=0.1)["res_scale"] == 0.1
  # vgg_discriminator: conv5_0 exists only for 256x256 inputs.
  disc = _zeros(conv0_0__weight=(2, 3, 3, 3), conv5_0__weight=(16, 16, 3, 3))
  assert detect_lib.read_hparams("vgg_discriminator", disc)["input_size"] == 256


def test_write_workdir_refuses_a_workdir_with_checkpoints(data_dir, tmp_path):
  path = _fixture(data_dir, "edsr_x2")[0]
  convert.convert(path, "edsr", str(tmp_path))
  with pytest.raises(ValueError, match="already holds checkpoints"):
    convert.convert(path, "edsr", str(tmp_path))


def test_gan_fine_tunes_from_imported_realesrgan_g_and_d(data_dir, tmp_path, monkeypatch):
  """init_from / init_d_from = basicsr:<G.pth> / basicsr:<netD.pth>: a fresh run starts from
  both, trains, and a resumed run reads its checkpoint, not the .pth files."""
  g_path = _fixture(data_dir, "rrdbnet_x4")[0]
  d_path = _fixture(data_dir, "unet_discriminator")[0]
  train_dir = utils.make_image_folder(tmp_path / "train", count=2, size=(40, 48))
  config = utils.tiny_gan_config(train_dir, scale=4, generator="rrdbnet", discriminator="unet_sn")
  config.model.num_grow_ch = 3  # rrdbnet_x4: num_feat 4, num_block 1; netD: num_feat 4.
  config.num_train_steps, config.log_every_steps = 2, 1
  config.init_from = interop_load.BASICSR_PREFIX + g_path
  config.init_d_from = interop_load.BASICSR_PREFIX + d_path
  g_imported = interop_load.load_variables(g_path, "rrdbnet").variables
  d_imported = interop_load.load_variables(d_path, "unet_discriminator").variables
  comps, mesh = builders.components_from_config(config), sharding.create_mesh()

  fresh, start = train.restore_or_init(
      config, checkpointing.create_manager(str(tmp_path / "fresh")), comps, mesh)
  assert start == 0
  utils.assert_trees_equal(jax.device_get({"params": fresh.params, **fresh.model_state}),
                           g_imported)
  utils.assert_trees_equal(jax.device_get({"params": fresh.d_params, **fresh.d_model_state}),
                           d_imported)

  workdir = str(tmp_path / "run")
  trained = jax.device_get(train.train_and_evaluate(config, workdir))
  assert int(trained.step) == 2
  for name, stats in trained.d_model_state["batch_stats"].items():  # Power iterations ran.
    assert not np.array_equal(stats["u"], d_imported["batch_stats"][name]["u"])
  assert not np.array_equal(trained.d_params["conv9"]["kernel"],
                            d_imported["params"]["conv9"]["kernel"])
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves((trained.params, trained.d_params)))

  def no_import(*args, **kwargs):
    raise AssertionError("a resumed run imported weights again")
  monkeypatch.setattr(interop_load, "load_variables", no_import)
  resumed, start = train.restore_or_init(
      config, checkpointing.create_manager(workdir, read_only=True), comps, mesh)
  assert start == 2
  utils.assert_trees_equal(jax.device_get(resumed), trained)


# ---------------------------------------------------------------- SRVGGNetCompact


def test_srvgg_prelu_uses_a_slope_per_channel():
  x = jnp.asarray([[[[-2.0, -2.0, 3.0]]]])
  y = srvgg.PReLU().apply({"params": {"kernel": jnp.asarray([0.5, -1.0, 7.0])}}, x)
  np.testing.assert_array_equal(y, [[[[-1.0, 2.0, 3.0]]]])  # Exact products of small binaries.


def test_srvgg_registry_parameter_count_and_act_type_check():
  assert models.MODELS["srvgg"] is models.SRVGGNetCompact
  model = models.create_model("srvgg", 4, num_feat=64, num_conv=32)  # realesr-general-x4v3
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
  # Convs 3->64, 32 x 64->64, 64->48 (3x3 + bias) and 33 PReLUs of 64 slopes.
  expected = (27 * 64 + 64) + 32 * (576 * 64 + 64) + (576 * 48 + 48) + 33 * 64
  assert models.count_params(shapes) == expected == 1_213_296
  with pytest.raises(ValueError, match="act_type must be one of"):
    models.create_model("srvgg", 4, act_type="gelu")


@pytest.mark.exact("zero weights add exact zeros to the repeated pixels")
def test_srvgg_with_zero_body_is_nearest_upsampling():
  model = models.create_model("srvgg", 2, num_feat=4, num_conv=1, act_type="leakyrelu")
  x = jnp.asarray(np.random.default_rng(0).uniform(size=(1, 3, 5, 3)), jnp.float32)
  shapes = jax.eval_shape(model.init, jax.random.key(0), x)
  variables = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  np.testing.assert_array_equal(jax.jit(model.apply)(variables, x),
                                np.repeat(np.repeat(x, 2, axis=1), 2, axis=2))
