"""Helpers for tests: tiny synthetic photographs-like images, tiny configs, CLI runs."""

import os
import socket
import subprocess
import sys
import threading
import time

import jax
import numpy as np
from PIL import Image

from jaxsr import checkpointing
from jaxsr import config_base
from jaxsr import sharding

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
  """Runs `python -m <module> <args>` from the repository on CPU; asserts it exits 0 (the
  message shows the end of its stderr)."""
  result = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True,
                          text=True)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def smooth_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
  """uint8 [H, W, 3]: random low-frequency colour field plus a few sharp edges (not noise)."""
  yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
  img = np.zeros((height, width, 3))
  for c in range(3):
    for _ in range(3):
      fy, fx, ph = rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0), rng.uniform(0, 2 * np.pi)
      img[..., c] += np.sin(2 * np.pi * (fy * yy + fx * xx) + ph)
  img = (img - img.min()) / (np.ptp(img) + 1e-9)
  for _ in range(2):  # Rectangles give edges, so SR has something to learn.
    y0, x0 = rng.integers(0, height // 2), rng.integers(0, width // 2)
    img[y0:y0 + height // 3, x0:x0 + width // 3] = rng.uniform(0, 1, 3)
  return np.round(img * 255).astype(np.uint8)


def make_image_folder(path, count: int = 6, size=(40, 48), seed: int = 0) -> str:
  """Writes `count` PNGs of `size` (H, W) to `path`; returns the path."""
  os.makedirs(path, exist_ok=True)
  rng = np.random.default_rng(seed)
  for i in range(count):
    Image.fromarray(smooth_image(rng, *size)).save(os.path.join(path, f"img{i:02d}.png"))
  return str(path)


def tiny_config(train_dir: str, val_dir: str = "", scale: int = 2):
  """A config that trains a 4-feature MSRResNet on 16x16 patches in a fraction of a second/step."""
  c = config_base.base_config()
  c.scale = scale
  c.batch_size = 4
  c.num_train_steps = 6
  c.log_every_steps = 2
  c.eval_every_steps = 3
  c.checkpoint_every_steps = 3
  c.model.name = "msrresnet"
  c.model.num_feat = 4
  c.model.num_block = 1
  c.data.train = "folder:" + train_dir
  c.data.gt_size = 8 * scale
  c.data.prefetch = 1
  c.optim.schedule = "constant"
  c.optim.learning_rate = 1e-3
  c.eval.datasets = "folder:" + val_dir if val_dir else ""
  c.eval.num_samples = 2
  return c


def tiny_gan_config(train_dir: str, val_dir: str = "", scale: int = 2,
                    generator: str = "seed", discriminator: str = "seed"):
  """`tiny_config` as a GAN: a 4-feature generator (the seed's, with BatchNorm, by default) and
  a 4-feature discriminator (the seed's: strided convs + BatchNorm) on 16x16 HR patches."""
  c = config_base.gan_config()
  tiny = tiny_config(train_dir, val_dir, scale)
  for key in tiny:
    if key not in ("model", "loss"):
      c[key] = tiny[key]
  c.model.name = generator
  c.model.num_feat = 4
  if generator == "seed":
    c.model.num_down = 1
  else:
    c.model.num_block = 1
  c.discriminator.name = discriminator
  c.discriminator.num_feat = 4
  if discriminator == "seed":
    c.discriminator.num_down = 2
  c.loss.gan_weight = 0.1
  c.optim_d.schedule = "constant"
  c.optim_d.learning_rate = 1e-3
  return c


def saved_state(workdir, step=None):
  """The raw saved state pytree (numpy) and data state of a checkpoint."""
  manager = checkpointing.create_manager(str(workdir), read_only=True)
  step = manager.latest_step() if step is None else step
  state, data = checkpointing.restore_on_this_host(
      manager, step, sharding.replicated(sharding.create_mesh()))
  return jax.device_get(state), data


def assert_trees_equal(a, b):
  """Same structure and bit-identical leaves (PRNG keys compared by their data)."""
  leaves_a, tree_a = jax.tree.flatten(a)
  leaves_b, tree_b = jax.tree.flatten(b)
  assert tree_a == tree_b
  for x, y in zip(leaves_a, leaves_b):
    if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
      x, y = jax.random.key_data(x), jax.random.key_data(y)
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def tiny_realworld_config(train_dir: str, val_dir: str = "", scale: int = 2, gan: bool = False):
  """`tiny_config` (or `tiny_gan_config`) trained on Real-ESRGAN degradations: HR crops of 32,
  pairs of 8 / 16 pixels, a pool of 8 pairs (two batches)."""
  c = config_base.realworld_config(gan=gan)
  tiny = (tiny_gan_config if gan else tiny_config)(train_dir, val_dir, scale)
  for key in tiny:
    if key == "data":
      for data_key in tiny.data:
        if data_key != "use_rot":
          c.data[data_key] = tiny.data[data_key]
    else:
      c[key] = tiny[key]
  c.data.crop_pad_size = 32
  c.degradation.queue_size = 8
  return c


def tiny_config_file(path, *args: str, maker: str = "utils.tiny_config") -> str:
  """Writes a config file whose `get_config()` returns `<maker>(*args)`, `maker` a function of
  a module of `tests` ('utils.tiny_config', 'test_x.config'), for `jaxsr.main` processes;
  returns its path."""
  module, function = maker.split(".")
  path = str(path)
  with open(path, "w") as f:
    f.write(f"import sys\nsys.path.insert(0, {REPO!r})\nfrom tests import {module}\n"
            f"def get_config():\n  return {module}.{function}(*{args!r})\n")
  return path


def free_port() -> int:
  """A TCP port free on 127.0.0.1 now (for a jax.distributed coordinator)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def process_env(**extra: str) -> dict:
  """Environment for a jaxsr process: CPU, one device, the repository importable."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO,
             PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
  env.pop("XLA_FLAGS", None)
  env.update(extra)
  return env


class LoggedProcess:
  """A subprocess whose stderr is collected line by line in a thread, so a test can wait for a
  log line, signal it, and read its whole log."""

  def __init__(self, args, env=None, cwd=REPO):
    self.proc = subprocess.Popen([str(a) for a in args], env=env or process_env(), cwd=cwd,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    self.lines = []
    self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr),
                                    daemon=True)
    self._reader.start()

  @property
  def log(self) -> str:
    return "".join(self.lines)

  def wait_for(self, text: str, timeout: float = 240) -> None:
    """Blocks until a stderr line contains `text`; fails if the process ends or time runs out."""
    deadline = time.time() + timeout
    while not any(text in line for line in list(self.lines)):
      assert self.proc.poll() is None, f"exited before '{text}':\n{self.log[-3000:]}"
      assert time.time() < deadline, f"no '{text}' within {timeout} s:\n{self.log[-3000:]}"
      time.sleep(0.05)

  def wait(self, timeout: float = 240) -> int:
    """Exit status (kills the process first if it is still running after `timeout`)."""
    try:
      return self.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      self.proc.kill()
      self.proc.wait()
      raise
    finally:
      self._reader.join(timeout=10)
