"""Validation and `--mode=eval` spread over devices and processes give bitwise the numbers,
JSON and images of one device: 2 processes (launch/local_multiprocess.sh), 3 fake CPU devices
in one process, 2 processes of 2 devices (validate's sample grid), against 1 device."""

import os
import pickle
import shutil
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from jaxsr import builders
from jaxsr import evaluate
from jaxsr import metrics
from jaxsr import sharding
from jaxsr.ops import imresize

from tests import utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Five images (an odd count: the split over processes and devices is uneven), all sizes differ.
SIZES = ((36, 44), (40, 40), (30, 50), (44, 34), (38, 42))
SCALE = 2


def eval_config(train_dir: str, val_dir: str):
  """A tiny MSRResNet trained 2 steps, evaluated with everything per image that is gathered:
  metrics, no-reference measures, the published bicubic baseline, SR PNGs."""
  c = utils.tiny_config(train_dir, val_dir, scale=SCALE)
  c.num_train_steps = c.checkpoint_every_steps = c.eval_every_steps = 2
  c.eval.checkpoint = "latest"
  c.eval.bicubic_baseline = True
  return c


def make_val_folder(path) -> str:
  os.makedirs(path, exist_ok=True)
  rng = np.random.default_rng(7)
  for i, (h, w) in enumerate(SIZES):
    Image.fromarray(utils.smooth_image(rng, h, w)).save(os.path.join(path, f"img{i:02d}.png"))
  return str(path)


def eval_outputs(workdir) -> dict:
  """{relative path: bytes} of what `--mode=eval` wrote, but the report (it names no run)."""
  out = os.path.join(str(workdir), "eval")
  files = {}
  for root, _, names in os.walk(out):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, out)] = f.read()
  return files


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """(config file for subprocesses, trained workdir, what a 1-process eval of it wrote)."""
  # Imported here: TensorFlow (train's input pipeline) would slow the validate subprocesses.
  from jaxsr import train  # pylint: disable=g-import-not-at-top
  tmp = tmp_path_factory.mktemp("sharded")
  train_dir = utils.make_image_folder(tmp / "train", count=4, size=(32, 32), seed=3)
  val_dir = make_val_folder(tmp / "Val" / "HR")
  config = eval_config(train_dir, val_dir)
  train.train_and_evaluate(config, str(tmp / "run"))
  shutil.copytree(tmp / "run", tmp / "one")
  evaluate.evaluate(config, str(tmp / "one"))
  config_path = utils.tiny_config_file(tmp / "config.py", train_dir, val_dir,
                                       maker="test_eval_sharded.eval_config")
  return config_path, tmp / "run", eval_outputs(tmp / "one")


def assert_same_eval(one: dict, other: dict):
  assert sorted(one) == sorted(other)
  # Per image its SR and the report's three crops (bicubic, SR, HR).
  assert len([k for k in one if k.endswith(".png")]) == 4 * len(SIZES)
  for key in one:
    if key != "report.md":
      assert one[key] == other[key], key


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_two_processes_write_the_eval_of_one(trained, tmp_path):
  config_path, run, one = trained
  shutil.copytree(run, tmp_path / "two")
  result = utils.run_process(
      ["bash", os.path.join(REPO, "launch", "local_multiprocess.sh"), "2", str(config_path),
       str(tmp_path / "two"), "--mode=eval"], timeout=utils.LONG)
  assert result.returncode == 0, result.stderr[-4000:]
  assert "JAX process 1/2" in result.stderr
  assert "Process 0 runs 3 of 5 images" in result.stderr
  assert "Process 1 runs 2 of 5 images" in result.stderr
  assert_same_eval(one, eval_outputs(tmp_path / "two"))


def test_three_devices_write_the_eval_of_one(trained, tmp_path):
  config_path, run, one = trained
  shutil.copytree(run, tmp_path / "three")
  result = utils.run_process(
      [sys.executable, "-m", "jaxsr.main", f"--config={config_path}",
       f"--workdir={tmp_path / 'three'}", "--mode=eval"],
      env=utils.process_env(XLA_FLAGS="--xla_force_host_platform_device_count=3"))
  assert result.returncode == 0, result.stderr[-4000:]
  assert "CpuDevice(id=2)" in result.stderr
  assert_same_eval(one, eval_outputs(tmp_path / "three"))


class _Writer:
  """Records what `validate` logs."""

  def __init__(self):
    self.scalars, self.images = {}, {}

  def write_scalars(self, step, scalars):
    del step
    self.scalars.update(scalars)

  def write_images(self, step, images):
    del step
    self.images.update(images)


def val_pairs():
  """The 5 `SIZES` images as EvalPairs (8-bit bicubic LR)."""
  rng = np.random.default_rng(11)
  pairs = []
  for i, (h, w) in enumerate(SIZES):
    hr = utils.smooth_image(rng, h, w)
    lr = metrics.to_uint8(imresize.imresize_np(hr / 255.0, 1.0 / SCALE)) / np.float32(255.0)
    pairs.append(evaluate.EvalPair(f"img{i}", lr.astype(np.float32), hr))
  return pairs


def tiny_model():
  """(tiny MSRResNet, its sr_fn)."""
  model = builders.model_from_config(utils.tiny_config("", scale=SCALE))
  return model, evaluate.make_sr_fn(builders.make_apply_fn(model))


def validate_on_all_devices(variables, workdir: str):
  """`validate` of the tiny model on `val_pairs` (3 in the sample grid), numpy `variables`
  replicated over every device -> (logged scalars, sample grid)."""
  replicated = sharding.replicated(sharding.create_mesh())
  on_mesh = jax.tree.map(
      lambda x: jax.make_array_from_callback(x.shape, replicated, lambda idx: x[idx]), variables)
  writer = _Writer()
  result = evaluate.validate(tiny_model()[1], on_mesh, {"Val": val_pairs()}, SCALE, 7, writer,
                             workdir, num_samples=3, is_chief=jax.process_index() == 0)
  assert result == {"val_psnr_y": writer.scalars["val/Val/psnr_y"],
                    "val_ssim_y": writer.scalars["val/Val/ssim_y"]}
  return writer.scalars, writer.images["samples/Val"][0]


def test_validate_on_two_processes_of_two_devices_matches_one_device(tmp_path):
  assert jax.device_count() == 1
  model, sr_fn = tiny_model()
  config = utils.tiny_config("", scale=SCALE)
  variables = jax.device_get(builders.init_variables_fn(model, config)(jax.random.key(1)))
  scalars, grid = validate_on_all_devices(variables, str(tmp_path / "one"))
  # As a plain loop over the images computes it.
  pairs = val_pairs()
  srs = [metrics.to_uint8(sr_fn(variables, p.lr)) for p in pairs]
  assert scalars == {"val/Val/psnr_y": np.mean([metrics.psnr(sr, p.hr, SCALE)
                                                for sr, p in zip(srs, pairs)]),
                     "val/Val/ssim_y": np.mean([metrics.ssim(sr, p.hr, SCALE)
                                                for sr, p in zip(srs, pairs)])}
  np.testing.assert_array_equal(grid, evaluate.sample_grid(pairs[:3], srs[:3], SCALE))

  variables_path = tmp_path / "variables.pkl"
  variables_path.write_bytes(pickle.dumps(variables))
  port = utils.free_port()
  env = utils.process_env(XLA_FLAGS="--xla_force_host_platform_device_count=2")
  procs = [utils.LoggedProcess(
      [sys.executable, "-m", "tests.test_eval_sharded", str(variables_path),
       str(tmp_path / "four"), str(i), str(port)], env=env, stdout=True) for i in range(2)]
  for p, code in zip(procs, utils.wait_all(procs, timeout=utils.LONG)):
    assert code == 0, p.log[-4000:]
  assert [p.out.strip().splitlines()[-1] for p in procs] == [repr(scalars)] * 2
  np.testing.assert_array_equal(np.load(tmp_path / "four" / "grid.npy"), grid)
  png = "samples/Val_step0000007.png"
  assert (tmp_path / "four" / png).read_bytes() == (tmp_path / "one" / png).read_bytes()


if __name__ == "__main__":
  # A process of test_validate_on_two_processes_of_two_devices_matches_one_device.
  variables_file, workdir, process_id, port = sys.argv[1:]
  process_id = int(process_id)
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                             process_id=process_id)
  assert jax.device_count() == 4 and jax.local_device_count() == 2
  with open(variables_file, "rb") as f:
    scalars, grid = validate_on_all_devices(pickle.load(f), workdir)
  if process_id == 0:
    np.save(os.path.join(workdir, "grid.npy"), grid)
  print(repr(scalars))
