"""SwinIR: parameter counts of the paper models, BasicSR's outputs reproduced from imported
weights on odd sizes, stochastic depth, bf16, training / resume, eval and tiled upscale.

The fixtures tests/data/swinir/*.pth and swinir_golden.npz were written by BasicSR 1.4.2's own
`swinir_arch.py` under CPU torch (tests/data/make_swinir_golden.py); torch is not needed here.
"""

import importlib.util
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxsr import config_base
from jaxsr import inference
from jaxsr import models
from jaxsr.interop import torch_io
from jaxsr import train
from jaxsr.interop import detect as detect_lib
from jaxsr.interop import load as interop_load
from jaxsr.interop.families import swinir as swinir_rules
from jaxsr.models import swinir

from tests import utils
from tests.utils import assert_trees_equal, saved_state

REPO = pathlib.Path(__file__).parent.parent
# Golden models (make_swinir_golden.VARIANTS): (scale, upsampler, resi_connection, num_heads).
GOLDEN = {
    "classical_x2": (2, "pixelshuffle", "1conv", (2, 2)),
    "classical_x3": (3, "pixelshuffle", "1conv", (2, 2)),
    "classical_x4": (4, "pixelshuffle", "1conv", (2, 4, 2)),
    "light_x4": (4, "pixelshuffledirect", "1conv", (2, 2)),
    "real_x4": (4, "nearest+conv", "1conv", (2, 2)),
    "real_x4_3conv": (4, "nearest+conv", "3conv", (2, 2)),
    "denoise_x1": (1, "", "1conv", (2, 2)),
}
# The paper models (issue #10): model kwargs -> parameter count.
PAPER_MODELS = {
    "classical_x4": (dict(scale=4), 11_900_199),
    "classical_x2": (dict(scale=2), 11_752_487),
    "light_x4": (dict(scale=4, embed_dim=60, depths=(6,) * 4, num_heads=(6,) * 4,
                      upsampler="pixelshuffledirect"), 929_628),
    "real_m_x4": (dict(scale=4, upsampler="nearest+conv"), 11_715_559),
    "real_l_x4": (dict(scale=4, embed_dim=240, depths=(6,) * 9, num_heads=(8,) * 9,
                       upsampler="nearest+conv", resi_connection="3conv"), 28_013_059),
}
TINY = dict(name="swinir", embed_dim=8, depths=(2,), num_heads=(2,), window_size=4,
            upsampler="pixelshuffledirect", num_feat=8)


@pytest.fixture(scope="module")
def golden(data_dir=pathlib.Path(__file__).parent / "data"):
  return dict(np.load(data_dir / "swinir_golden.npz"))


def _golden_model(name, **overrides):
  path = str(REPO / "tests" / "data" / "swinir" / f"{name}.pth")
  loaded = interop_load.load_variables(path, "swinir", **overrides)
  hparams, variables = loaded.hparams, loaded.variables
  return hparams, interop_load.create_module("swinir", hparams), variables


@pytest.mark.parametrize("name", sorted(PAPER_MODELS))
def test_paper_models_have_the_official_parameter_counts(name, golden):
  kwargs, expected = PAPER_MODELS[name]
  kwargs = dict(kwargs)
  model = models.create_model("swinir", kwargs.pop("scale"), **kwargs)
  shapes = jax.eval_shape(lambda k: model.init(k, jnp.zeros((1, 13, 10, 3))), jax.random.key(0))
  assert models.count_params(shapes["params"]) == expected
  assert int(golden[f"counts/{name}"]) == expected  # BasicSR's own count, stored by the script.


@pytest.mark.numerics
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_imported_weights_reproduce_basicsr_on_odd_sizes(name, golden):
  hparams, model, variables = _golden_model(name)
  scale, upsampler, resi, heads = GOLDEN[name]
  assert (hparams["scale"], hparams["upsampler"], hparams["resi_connection"],
          hparams["num_heads"], hparams["window_size"], hparams["embed_dim"]) == (
              scale, upsampler, resi, heads, 4, 16)
  apply = jax.jit(model.apply)
  for i in range(3):
    x, expected = golden[f"{name}/input_{i}"], golden[f"{name}/output_{i}"]
    y = np.asarray(apply(variables, x))
    assert y.shape == expected.shape
    # PyTorch's float32 outputs (up to ~2.4 for denoise_x1): relative to the largest.
    utils.assert_close(y, expected, ops=utils.network_ops(variables), err_msg=f"{name} {i}")


@pytest.mark.numerics
def test_dot_product_attention_gives_the_einsum_output(golden):
  hparams, model, variables = _golden_model("light_x4")
  other = interop_load.create_module("swinir", dict(hparams, attention="dot_product_attention"))
  x = golden["light_x4/input_1"]
  utils.assert_close(other.apply(variables, x), model.apply(variables, x),
                     ops=utils.network_ops(variables))


def test_buffers_are_checked_not_loaded(tmp_path):
  path = REPO / "tests" / "data" / "swinir" / "real_x4.pth"
  state_dict = torch_io.select_params(torch_io.load_state_dict(str(path)), "")
  assert any(k.endswith("attn_mask") for k in state_dict)
  key = "layers.0.residual_group.blocks.0.attn.relative_position_index"
  np.testing.assert_array_equal(state_dict[key], swinir.relative_position_index(4))
  bad = dict(state_dict)
  bad[key] = state_dict[key][::-1].copy()
  with pytest.raises(ValueError, match="not SwinIR's relative position index"):
    swinir_rules.to_jaxsr(bad, {})
  with pytest.raises(ValueError, match="ape=True"):
    detect_lib.read_hparams("swinir", dict(state_dict, absolute_pos_embed=np.zeros((1, 4, 16))))
  with pytest.raises(ValueError, match="Not a swinir state dict: no 'conv_first.weight'"):
    detect_lib.read_hparams("swinir", {"conv.weight": np.zeros((1, 1, 3, 3))})


@pytest.mark.parametrize("kwargs,message", [
    (dict(scale=3, upsampler="nearest+conv"), r"'nearest\+conv' builds scales \(2, 4\), not 3"),
    (dict(scale=4, upsampler=""), r"upsampler '' builds scales \(1,\), not 4"),
    (dict(scale=2, upsampler="deconv"), "upsampler='deconv' is not one of"),
    (dict(scale=2, num_heads=(7,) * 6), "embed_dim 180 is not divisible"),
    (dict(scale=2, depths=(6, 6)), "one entry per RSTB"),
    (dict(scale=2, attention="flash"), "attention='flash'"),
])
def test_bad_options_are_clear_errors_at_construction(kwargs, message):
  kwargs = dict(kwargs)
  with pytest.raises(ValueError, match=message):
    models.create_model("swinir", kwargs.pop("scale"), **kwargs)


@pytest.mark.numerics
def test_any_size_including_smaller_than_the_window():
  model = models.create_model("swinir", 2, **{k: v for k, v in TINY.items() if k != "name"})
  x = jnp.asarray(np.random.default_rng(0).random((2, 3, 5, 3), np.float32))
  variables = jax.jit(model.init)(jax.random.key(0), x)
  apply = jax.jit(model.apply)  # One compile per shape (eager apply compiles every op).
  for shape in [(2, 3, 5, 3), (1, 6, 7, 3)]:
    y = apply(variables, jnp.ones(shape))
    assert y.shape == (shape[0], 2 * shape[1], 2 * shape[2], 3) and y.dtype == jnp.float32
  # Reflect padding to the window, then the crop: the top-left of a padded image's output is the
  # output of the image itself when the padded size is what the model pads to anyway.
  x9 = np.random.default_rng(1).random((1, 6, 7, 3), np.float32)
  padded = np.pad(x9, ((0, 0), (0, 2), (0, 1), (0, 0)), mode="reflect")
  # Programs compiled for other shapes: equal up to rounding.
  utils.assert_close(apply(variables, x9), apply(variables, padded)[:, :12, :14],
                     ops=utils.network_ops(variables))


@pytest.mark.numerics
@pytest.mark.exact("the same compiled program and key give the same drops (resume relies on it)")
def test_stochastic_depth_needs_a_key_drops_per_sample_and_is_off_in_eval():
  kwargs = {k: v for k, v in TINY.items() if k != "name"}
  model = models.create_model("swinir", 2, **dict(kwargs, drop_path_rate=0.9))
  x = jnp.asarray(np.random.default_rng(0).random((8, 8, 8, 3), np.float32))
  variables = jax.jit(model.init)(jax.random.key(0), x)
  evaluated = jax.jit(model.apply)(variables, x)
  train = jax.jit(lambda v, x, key: model.apply(v, x, train=True, rngs={"dropout": key}))
  a, b = train(variables, x, jax.random.key(1)), train(variables, x, jax.random.key(2))
  assert not np.allclose(a, evaluated) and not np.allclose(a, b)
  np.testing.assert_array_equal(a, train(variables, x, jax.random.key(1)))
  with pytest.raises(Exception, match="dropout"):
    model.apply(variables, x, train=True)
  no_drop = models.create_model("swinir", 2, **dict(kwargs, drop_path_rate=0.0))
  # Eager op by op vs `evaluated`'s jit: equal up to rounding.
  utils.assert_close(
      no_drop.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)}), evaluated,
      ops=utils.network_ops(variables))


@pytest.mark.numerics
def test_bfloat16_stays_close_to_float32(golden):
  hparams, model, variables = _golden_model("light_x4")
  bf16 = interop_load.create_module("swinir", dict(hparams, dtype=jnp.bfloat16))
  x = golden["light_x4/input_1"]
  y32, y16 = np.asarray(model.apply(variables, x)), np.asarray(bf16.apply(variables, x))
  assert y16.dtype == np.float32
  mse = np.mean((np.clip(y16, 0, 1) - np.clip(y32, 0, 1))**2)
  assert 10 * np.log10(1 / mse) > 35  # PSNR of bf16 vs f32 outputs, in dB.


def _shrunk_config(name, train_dir):
  """configs/<name>.py with a tiny SwinIR (its upsampler kept), tiny patches and 6 steps."""
  config = config_base.config_from_file(str(REPO / "configs" / f"{name}.py"))
  config.model.update(embed_dim=8, depths=(2,), num_heads=(2,), window_size=4, num_feat=8,
                      drop_path_rate=0.2)
  tiny = utils.tiny_config(train_dir, scale=config.scale)
  for key in ("batch_size", "num_train_steps", "log_every_steps", "eval_every_steps",
              "checkpoint_every_steps", "data", "eval"):
    config[key] = tiny[key]
  return config


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
  root = tmp_path_factory.mktemp("swinir_images")
  return (utils.make_image_folder(root / "train", count=4, size=(40, 48), seed=3),
          utils.make_image_folder(root / "val", count=2, size=(27, 35), seed=4))


@pytest.mark.parametrize("name", ["swinir_light_x4"])
def test_config_trains_and_resumes_exactly(name, folders, tmp_path):
  """The paper recipe (swinir_light_x4 extends swinir_classical_x2's) on a tiny model;
  stochastic depth draws from the state's key, so a resumed run equals the straight one."""
  config = _shrunk_config(name, folders[0])
  state = train.train_and_evaluate(config, str(tmp_path / "straight"))
  assert int(state.step) == 6
  config.num_train_steps = 3
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  config.num_train_steps = 6
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  assert_trees_equal(saved_state(tmp_path / "straight", 6)[0],
                     saved_state(tmp_path / "resumed", 6)[0])


def test_converted_swinir_evaluates_odd_sizes_and_upscales_tiled(folders, tmp_path, golden):
  path = REPO / "tests" / "data" / "swinir" / "light_x4.pth"
  workdir = tmp_path / "w"
  utils.run_module("jaxsr.convert", "--arch=swinir", f"--input={path}", f"--workdir={workdir}")
  spec = importlib.util.spec_from_file_location("converted", workdir / "config.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert module.get_config().model.depths == (2, 2)

  val = utils.make_image_folder(tmp_path / "val", count=1, size=(45, 38))  # LR 11 x 9.
  utils.run_module("jaxsr.main", "--mode=eval", f"--config={workdir / 'config.py'}",
                   f"--workdir={workdir}", f"--config.eval.datasets=folder:{val}")
  with open(workdir / "eval" / "val_x4.json") as f:
    report = json.load(f)
  assert report["model"] == "swinir" and report["checkpoint_step"] == 0

  config, model, variables = inference.load_generator(str(workdir))
  assert inference.input_multiple(model) == 4
  image = golden["light_x4/input_1"][0]  # 9 x 17.
  sr_fn = inference.make_upscaler(model, variables)
  whole = inference.upscale_image(sr_fn, image, 4)
  utils.assert_close(whole, np.clip(golden["light_x4/output_1"][0], 0, 1),
                     ops=utils.network_ops(variables))
  tiled = inference.upscale_image(sr_fn, image, 4, tile=5, tile_pad=6, multiple=4)
  assert tiled.shape == whole.shape
  # Attention reaches past any finite pad: tiles are close to, not equal to, the whole image.
  assert np.mean(np.abs(tiled - whole)) < 0.02

  out = tmp_path / "up"
  Image.fromarray((image * 255).astype(np.uint8)).save(tmp_path / "in.png")
  utils.run_module("jaxsr.upscale", f"--workdir={workdir}", f"--input={tmp_path / 'in.png'}",
                   f"--output={out}", "--tile=8")
  assert Image.open(next(out.glob("*.png"))).size == (17 * 4, 9 * 4)
