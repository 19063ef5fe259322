"""Foreign weights (`jaxsr.interop`): the original ESRGAN layout (spandrel 0.4.2's own module
made the golden outputs, tests/data/make_esrgan_golden.py), BSRGAN's, `--arch=auto` detection
of every supported family, `.safetensors`, the `state_dict` / DataParallel wrappers, and one
clear line for layouts no family knows."""

import json
import re
import sys

import jax
import numpy as np
import pytest

from jaxsr.interop import torch_io
from jaxsr import train
from jaxsr.interop import detect as detect_lib
from jaxsr.interop import load as interop_load
from jaxsr.interop import safetensors_io
from jaxsr.interop.families import rrdbnet as rrdbnet_rules

from tests import utils
from tests.conftest import DATA_DIR

OLD = ("old_x1", "old_x2", "old_x4", "old_x8", "old_unshuffle_x2", "old_unshuffle_x1")


@pytest.fixture(scope="module")
def golden():
  with np.load(DATA_DIR / "esrgan_golden.npz") as f:
    return dict(f)


def _weights(keys_and_shapes, seed):
  """As `weights` of tests/data/make_esrgan_golden.py."""
  rng = np.random.default_rng(seed)
  out = {}
  for key, shape in keys_and_shapes:
    if key.endswith("weight"):
      out[key] = (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
    else:
      out[key] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
  return out


def _state_dict(golden, name):
  return _weights(json.loads(str(golden[f"{name}/keys"])), int(golden[f"{name}/seed"]))


def _run(loaded, x):
  model = interop_load.create_module(loaded.arch, loaded.hparams)
  return np.asarray(jax.jit(model.apply)(loaded.variables, x))


@pytest.mark.numerics
@pytest.mark.parametrize("name", OLD)
def test_old_esrgan_layout_is_detected_and_matches_spandrel(golden, name, tmp_path):
  path = tmp_path / f"{name}.pth"
  torch_io.save_state_dict(path, _state_dict(golden, name))
  loaded = interop_load.load_variables(str(path))
  detected = json.loads(str(golden[f"{name}/detected"]))
  assert loaded.arch == "rrdbnet"
  assert (loaded.hparams["scale"], loaded.hparams["num_in_ch"], loaded.hparams["num_out_ch"]) == (
      detected["scale"], detected["input_channels"], detected["output_channels"])
  assert (loaded.hparams["num_feat"], loaded.hparams["num_block"],
          loaded.hparams["num_grow_ch"]) == (8, 2, 32)
  assert loaded.summary.startswith("rrdbnet (esrgan layout): scale=")
  x, expected = golden[f"{name}/input"], golden[f"{name}/output"]
  utils.assert_close(_run(loaded, x), expected, np.float32,
                     ops=utils.network_ops(loaded.variables))


def test_bsrgan_layout_gives_the_same_model(golden, tmp_path):
  old = _state_dict(golden, "old_x4")
  basicsr = rrdbnet_rules.to_basicsr_names(old)
  renames = {"conv_body": "trunk_conv", "conv_hr": "HRconv", "conv_up1": "upconv1",
             "conv_up2": "upconv2"}
  bsrgan = {}
  for key, value in basicsr.items():
    module, _, leaf = key.rpartition(".")
    if m := re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)", module):
      module = f"RRDB_trunk.{m.group(1)}.RDB{m.group(2)}.conv{m.group(3)}"
    bsrgan[f"{renames.get(module, module)}.{leaf}"] = value
  torch_io.save_state_dict(tmp_path / "bsrgan.pth", bsrgan)
  loaded = interop_load.load_variables(str(tmp_path / "bsrgan.pth"))
  assert loaded.summary.startswith("rrdbnet (bsrgan layout)")
  torch_io.save_state_dict(tmp_path / "old.pth", old)
  reference = interop_load.load_variables(str(tmp_path / "old.pth"))
  utils.assert_trees_equal(loaded.variables, reference.variables)


@pytest.mark.parametrize("file_name,arch,expected", [
    ("basicsr/rrdbnet_x4.pth", "rrdbnet", {"scale": 4}),
    ("basicsr/rrdbnet_x2.pth", "rrdbnet", {"scale": 2}),
    ("basicsr/msrresnet_x3.pth", "msrresnet", {"scale": 3}),
    ("basicsr/edsr_x2.pth", "edsr", {"scale": 2}),
    ("basicsr/srvgg_x4.pth", "srvgg", {"scale": 4, "act_type": "prelu"}),
    ("basicsr/vgg_discriminator.pth", "vgg_discriminator", {}),
    ("basicsr/unet_discriminator.pth", "unet_discriminator", {"skip_connection": True}),
    ("swinir/classical_x4.pth", "swinir", {"scale": 4, "upsampler": "pixelshuffle"}),
    ("swinir/light_x4.pth", "swinir", {"upsampler": "pixelshuffledirect"}),
    ("compact_x2.safetensors", "srvgg",
     {"scale": 2, "num_feat": 4, "num_conv": 2, "act_type": "prelu"}),
])
def test_auto_detects_each_family_as_its_explicit_arch_reads_it(data_dir, file_name, arch,
                                                                expected):
  state_dict = interop_load.load_state_dict(str(data_dir / file_name))
  found_arch, hparams = detect_lib.detect(state_dict)
  assert found_arch == arch
  assert hparams == detect_lib.read_hparams(arch, state_dict)
  assert expected.items() <= hparams.items()


@pytest.mark.exact("a file round trip moves the bytes")
def test_safetensors_files_round_trip_every_dtype(data_dir, tmp_path):
  written_by_the_library = safetensors_io.load(data_dir / "compact_x2.safetensors")
  assert written_by_the_library["body.0.weight"].shape == (4, 3, 3, 3)
  tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3),
             "b": np.array([1.5, -2.25], jax.numpy.bfloat16), "c": np.array([3], np.int64),
             "d": np.zeros((0, 2), np.float16)}
  safetensors_io.save(tmp_path / "t.safetensors", tensors)
  back = safetensors_io.load(tmp_path / "t.safetensors")
  for key, value in tensors.items():
    assert back[key].dtype == value.dtype and back[key].shape == value.shape
    np.testing.assert_array_equal(back[key].astype(np.float64), value.astype(np.float64))
  (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 16)
  with pytest.raises(ValueError, match="not a .safetensors file"):
    safetensors_io.load(tmp_path / "bad.safetensors")


def test_wrappers_and_dataparallel_prefix_are_unwrapped(golden, tmp_path):
  state_dict = _state_dict(golden, "old_x2")
  torch_io.save_state_dict(tmp_path / "wrapped.pth", {"state_dict": {
      f"module.{k}": v for k, v in state_dict.items()}})
  loaded = interop_load.load_state_dict(str(tmp_path / "wrapped.pth"))
  assert loaded.keys() == state_dict.keys()


def test_unknown_and_unsupported_layouts_are_one_line_errors(golden):
  with pytest.raises(ValueError) as error:
    detect_lib.detect({"encoder.0.weight": np.zeros((4, 3, 3, 3)),
                       "decoder.weight": np.zeros((3, 4, 3, 3))})
  message = str(error.value)
  assert "\n" not in message and "Unknown layout" in message
  assert "['decoder', 'encoder']" in message and "rrdbnet" in message
  plus = dict(_state_dict(golden, "old_x4"))
  plus["model.1.sub.0.RDB1.conv1x1.weight"] = np.zeros((32, 8, 1, 1), np.float32)
  with pytest.raises(ValueError, match="ESRGAN\\+ weights .* not supported"):
    detect_lib.detect(plus)
  with pytest.raises(ValueError, match=r"Unknown architecture 'esrgan'.*'auto'"):
    detect_lib.family_of("esrgan")


def test_init_from_reads_old_layouts(golden, tmp_path):
  path = tmp_path / "old_x2.pth"
  state_dict = _state_dict(golden, "old_x2")
  torch_io.save_state_dict(path, state_dict)
  reference = interop_load.load_variables(str(path))
  like = jax.tree.map(jax.numpy.zeros_like, reference.variables)
  variables = train.load_init_variables(f"basicsr:{path}", like, "rrdbnet", scale=2)
  utils.assert_trees_equal(jax.device_get(variables), reference.variables)


def test_convert_cli_detects_and_says_what_it_found(golden, tmp_path):
  path = tmp_path / "old_x8.pth"
  torch_io.save_state_dict(path, _state_dict(golden, "old_x8"))
  done = utils.run_process([sys.executable, "-m", "jaxsr.convert", f"--input={path}",
                            f"--workdir={tmp_path / 'w'}"], check=True)
  line = done.stdout.strip().splitlines()[-1]
  assert line.startswith(f"{path}: rrdbnet (esrgan layout): scale=8, ")
  config = json.loads((tmp_path / "w" / "config.json").read_text())
  assert (config["model"]["name"], config["scale"]) == ("rrdbnet", 8)
