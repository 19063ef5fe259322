"""A user's mistake on the command line of every jaxsr program ends in one `error:` message that
names the fix, a non-zero exit status and no traceback (`jaxsr.cli`). Every case fails before
anything large is compiled."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxsr import cli
from tests import utils

MAIN = "jaxsr.main"
QUICK = ("--config=configs/quickstart.py", "--workdir={tmp}/w")
# A 1-block 4-feature model without validation: a train run reaches its data in ~1 s.
TINY = ("--config.model.num_feat=4", "--config.model.num_block=1", "--config.eval.datasets=")
UPSCALE_IO = ("--input={tmp}/in.png", "--output={tmp}/out.png")

# (id, module, args ({tmp}: the test's folder, holding in.png, junk.pth and train/hr.png),
#  exit status, substrings of the message).
CASES = [
    ("main-no-flags", MAIN, (), 2, ["--config", "must have a value"]),
    ("main-missing-config-file", MAIN, ("--config=configs/nope.py", "--workdir={tmp}/w"), 2,
     ["--config=configs/nope.py: cannot load the config file: no such file"]),
    ("main-unknown-config-key", MAIN, QUICK + ("--config.data.gt_sise=64",), 2,
     ["unknown config key --config.data.gt_sise", 'Did you mean "gt_size"']),
    ("main-bad-config-values", MAIN, QUICK + ("--config.scale=5", "--config.batch_size=-1"), 1,
     ["Invalid config", "scale=5", "batch_size=-1 must be positive"]),
    ("main-missing-vgg", MAIN,
     ("--config=configs/srgan_x4.py", "--workdir={tmp}/w", "--config.loss.vgg_weights={tmp}/vgg.h5",
      "--config.data.train=folder:{tmp}/train") + TINY, 1,
     ["VGG19 weights file", "vgg.h5", "does not exist"]),
    ("main-missing-folder", MAIN, QUICK + TINY + ("--config.data.train=folder:/nonexistent",), 1,
     ["'/nonexistent' does not exist"]),
    ("main-tfds-not-prepared", MAIN,
     QUICK + TINY + ("--config.data.train=tfds:div2k/bicubic_x2", "--config.data.data_dir={tmp}"),
     1, ["div2k", "not prepared"]),
    ("main-eval-no-checkpoint", MAIN,
     ("--mode=eval", "--config=configs/quickstart.py", "--workdir={tmp}/none"), 1,
     ["No checkpoint in"]),
    ("upscale-missing-input", "jaxsr.upscale",
     ("--input={tmp}/missing.png", "--output={tmp}/o", "--model={tmp}/m.onnx"), 2,
     ["--input", "missing.png does not exist"]),
    ("upscale-negative-tile", "jaxsr.upscale", UPSCALE_IO + ("--workdir={tmp}", "--tile=-1"), 2,
     ["--tile=-1"]),
    ("upscale-zero-outscale", "jaxsr.upscale", UPSCALE_IO + ("--workdir={tmp}", "--outscale=0"),
     2, ["--outscale must be > 0"]),
    ("upscale-workdir-and-model", "jaxsr.upscale",
     UPSCALE_IO + ("--workdir={tmp}", "--model={tmp}/m.onnx"), 1, ["--model or --workdir"]),
    ("upscale-no-model", "jaxsr.upscale", UPSCALE_IO, 1, ["--workdir, --checkpoint or --model"]),
    ("upscale-bad-checkpoint", "jaxsr.upscale",
     UPSCALE_IO + ("--checkpoint={tmp}/run/checkpoints/5",), 1, ["No config.json in", "run"]),
    ("convert-missing-pth", "jaxsr.convert",
     ("--arch=rrdbnet", "--input={tmp}/missing.pth", "--workdir={tmp}/w"), 1,
     ["missing.pth", "No such file"]),
    ("convert-not-a-checkpoint", "jaxsr.convert",
     ("--arch=rrdbnet", "--input={tmp}/junk.pth", "--workdir={tmp}/w"), 1,
     ["Not a", "torch.save"]),
    ("convert-unknown-arch", "jaxsr.convert",
     ("--arch=resnet9000", "--input={tmp}/junk.pth", "--workdir={tmp}/w"), 2,
     ["--arch", "resnet9000"]),
    ("export-no-format", "jaxsr.export", ("--workdir={tmp}",), 2, ["--format"]),
    ("export-bad-workdir", "jaxsr.export", ("--workdir={tmp}/none", "--format=onnx"), 1,
     ["No config.json in"]),
    ("degrade-missing-input", "jaxsr.degrade",
     ("--config=configs/realesrgan_x4plus.py", "--input={tmp}/missing", "--output={tmp}/o"), 1,
     ["missing"]),
]


def run_cli(module: str, *args: str, **env) -> subprocess.CompletedProcess:
  return utils.run_process([sys.executable, "-m", module, *args],
                           env=dict(os.environ, JAX_PLATFORMS="cpu", **env))


@pytest.mark.parametrize("module,args,code,expected", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_user_error_is_one_message(tmp_path, module, args, code, expected):
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
  (tmp_path / "train").mkdir()
  Image.fromarray(np.zeros((256, 256, 3), np.uint8)).save(tmp_path / "train" / "hr.png")
  (tmp_path / "junk.pth").write_bytes(b"this is not a torch checkpoint\n" * 4)
  result = run_cli(module, *(a.format(tmp=tmp_path) for a in args))
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  assert result.returncode == code, result.stderr[-3000:]
  message = result.stderr[result.stderr.rfind("error: "):]
  assert message.startswith("error: "), result.stderr[-3000:]
  for text in expected:
    assert text in message, message


def test_traceback_env_restores_the_traceback(tmp_path):
  result = run_cli(MAIN, *(a.format(tmp=tmp_path) for a in QUICK), "--config.scale=5",
                   **{cli.TRACEBACK_ENV: "1"})
  assert result.returncode != 0
  assert "Traceback" in result.stderr and "ValueError: Invalid config" in result.stderr


@pytest.mark.parametrize("raised,code,shown", [
    ("ValueError('bad value')", 1, "error: bad value"),
    ("FileNotFoundError(2, 'No such file or directory', 'x.pth')", 1,
     "error: x.pth: No such file or directory"),
    ("app.UsageError('bad usage')", 2, "error: bad usage"),
    ("ZeroDivisionError('a bug')", 1, "Traceback"),  # Not a user error: the traceback stays.
])
def test_run_maps_exceptions(raised, code, shown):
  script = ("from absl import app\nfrom jaxsr import cli\n"
            f"def main(argv):\n  raise {raised}\ncli.run(main)\n")
  result = utils.run_process([sys.executable, "-c", script], env=dict(os.environ))
  assert result.returncode == code and shown in result.stderr, result.stderr[-2000:]


def test_unreadable_vgg_weights_are_a_value_error(tmp_path):
  from jaxsr.models import vgg  # pylint: disable=g-import-not-at-top
  path = tmp_path / "vgg19.h5"
  path.write_bytes(b"not hdf5" * 8)
  with pytest.raises(ValueError, match="vgg19.h5' is not a readable HDF5 file.*vgg_weights="):
    vgg.load_vgg19_params(str(path))
