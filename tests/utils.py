"""Helpers for tests: tiny synthetic photographs-like images, tiny configs, CLI runs."""

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

import jax
import numpy as np
from PIL import Image
import pytest

from jaxsr import checkpointing
from jaxsr import config_base
from jaxsr import sharding

from tests import numeric_policy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


TIMEOUT_SCALE_ENV = "JAXSR_TEST_TIMEOUT_SCALE"
# Base limits (seconds) of every test's wait on a child process (its exit, a log line, a file),
# before `time_limit` scales them. Sized for a loaded machine: a cold JAX compilation cache and
# 2 cores shared with another xdist worker and a second heavy process (a tiny `jaxsr.main` run,
# 11 s alone, has taken over 120 s there). Waits end as soon as their event happens: passing
# tests never pay the limits; a hung child fails its test with the end of its log.
QUICK = 60  # A shell script of stubbed commands, shellcheck: no JAX compiles.
RUN = 600  # One process that compiles JAX programs on tiny inputs (`jaxsr.main`, upscale, ...).
LONG = 1200  # Two JAX processes sharing the cores, or compiling the whole degradation pipeline.


def time_limit(seconds: float) -> float:
  """`seconds` times $JAXSR_TEST_TIMEOUT_SCALE (default 1): the one place where the limits of the
  tests' waits on processes scale (e.g. 3 on a slower or busier machine)."""
  return seconds * float(os.environ.get(TIMEOUT_SCALE_ENV, "1"))


def tail(text, lines: int = 40) -> str:
  """The last `lines` lines of a child's output (str or bytes)."""
  if isinstance(text, bytes):
    text = text.decode(errors="replace")
  return "\n".join((text or "").splitlines()[-lines:])


def _command(args) -> str:
  text = shlex.join([os.path.basename(args[0]), *args[1:]])
  return text if len(text) <= 300 else text[:297] + "..."


def _limit(timeout: float) -> str:
  return f"{time_limit(timeout):g} s ({timeout:g} s x {TIMEOUT_SCALE_ENV}={time_limit(1):g})"


def _kill_group(proc: subprocess.Popen) -> None:
  """SIGKILL to the child's process group (its own: it and anything it started), then reaped."""
  if proc.poll() is None:
    try:
      os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
  proc.wait()


def run_process(args, *, timeout: float = RUN, check: bool = False, env=None, cwd=REPO
                ) -> subprocess.CompletedProcess:
  """`subprocess.run(args)` with text stdout and stderr captured (env: `process_env()` unless
  given). Still running after `time_limit(timeout)` s: the child and its children are killed and
  the test fails with the end of its stderr; `check`: asserts it exits 0 (likewise)."""
  args = [str(a) for a in args]
  with subprocess.Popen(args, cwd=cwd, env=process_env() if env is None else env,
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True, start_new_session=True) as proc:
    try:
      stdout, stderr = proc.communicate(timeout=time_limit(timeout))
      timed_out = False
    except subprocess.TimeoutExpired:
      _kill_group(proc)
      stdout, stderr = proc.communicate()
      timed_out = True
    except BaseException:  # Ctrl-C of pytest, ...: no orphans.
      _kill_group(proc)
      raise
  if timed_out:
    pytest.fail(f"`{_command(args)}` still running after {_limit(timeout)}; killed. "
                f"Last lines of its stderr:\n{tail(stderr)}")
  if check:
    assert proc.returncode == 0, (f"`{_command(args)}` exited {proc.returncode}. "
                                  f"Last lines of its stderr:\n{tail(stderr)}")
  return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def run_module(module: str, *args: str, timeout: float = RUN) -> subprocess.CompletedProcess:
  """Runs `python -m <module> <args>` from the repository on CPU; asserts it exits 0 (the
  message shows the end of its stderr)."""
  return run_process([sys.executable, "-m", module, *args], timeout=timeout, check=True,
                     env=dict(os.environ, JAX_PLATFORMS="cpu"))


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
  """Same structure and bit-identical leaves (PRNG keys compared by their data): for resume and
  determinism (the same program on the same machine), where exactness is the promise; exempt
  from `numeric_policy`."""
  leaves_a, tree_a = jax.tree.flatten(a)
  leaves_b, tree_b = jax.tree.flatten(b)
  assert tree_a == tree_b
  for x, y in zip(leaves_a, leaves_b):
    if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
      x, y = jax.random.key_data(x), jax.random.key_data(y)
    numeric_policy.ORIGINAL["assert_array_equal"](np.asarray(x), np.asarray(y))


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
  """A subprocess (in its own process group) whose stderr, and with `stdout=True` its stdout, is
  collected line by line in threads, so a test can wait for a log line or a file, signal it, and
  read its whole log. Used with `with`, it is killed if still running at the end of the block."""

  def __init__(self, args, env=None, cwd=REPO, stdout=False):
    self.args = [str(a) for a in args]
    self.proc = subprocess.Popen(self.args, env=env or process_env(), cwd=cwd,
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, start_new_session=True)
    self.lines, self.out_lines = [], []
    self._readers = [threading.Thread(target=lines.extend, args=(stream,), daemon=True)
                     for lines, stream in ((self.lines, self.proc.stderr),
                                           (self.out_lines, self.proc.stdout)) if stream]
    for reader in self._readers:
      reader.start()

  def __enter__(self) -> "LoggedProcess":
    return self

  def __exit__(self, *exc_info) -> None:
    self.stop()

  @property
  def log(self) -> str:
    """Its stderr so far."""
    return "".join(self.lines)

  @property
  def out(self) -> str:
    """Its stdout so far (with `stdout=True`)."""
    return "".join(self.out_lines)

  def failure(self, problem: str) -> str:
    """`problem`, naming the process, and the end of its stderr."""
    return (f"`{_command(self.args)}` (pid {self.proc.pid}) {problem}. Last lines of its "
            f"stderr:\n{tail(self.log)}")

  def stop(self) -> None:
    """Kills it (and what it started) if still running; waits for its output to be read."""
    _kill_group(self.proc)
    for reader, stream in zip(self._readers, filter(None, (self.proc.stderr, self.proc.stdout))):
      reader.join(timeout=10)
      if not reader.is_alive():
        stream.close()

  def wait_until(self, condition, what: str, timeout: float = RUN) -> None:
    """Blocks until `condition()` is true (checked every 0.05 s); fails with the end of the log if
    the process ends first or after `time_limit(timeout)` s."""
    deadline = time.monotonic() + time_limit(timeout)
    while not condition():
      if self.proc.poll() is not None:
        self.stop()  # All its output read: `condition` sees its last lines.
        if condition():
          return
        pytest.fail(self.failure(f"exited ({self.proc.returncode}) before {what}"))
      if time.monotonic() > deadline:
        pytest.fail(self.failure(f"gave no {what} within {_limit(timeout)}"))
      time.sleep(0.05)

  def wait_for(self, text: str, timeout: float = RUN) -> None:
    """Blocks until a stderr line contains `text` (see `wait_until`)."""
    self.wait_until(lambda: any(text in line for line in list(self.lines)),
                    f"log line with '{text}'", timeout)

  def wait(self, timeout: float = RUN) -> int:
    """Exit status; still running after `time_limit(timeout)` s: killed, and the test fails with
    the end of its log."""
    return wait_all([self], timeout)[0]


def wait_all(processes, timeout: float = RUN) -> list:
  """Exit statuses of LoggedProcesses, waited for together. Any still running after
  `time_limit(timeout)` s: all are killed, and the test fails with the end of each one's log."""
  deadline = time.monotonic() + time_limit(timeout)
  try:
    while any(p.proc.poll() is None for p in processes):
      if time.monotonic() > deadline:
        running = [p.proc.poll() is None for p in processes]
        for p in processes:
          p.stop()
        pytest.fail("\n\n".join(
            p.failure(f"still running after {_limit(timeout)}; killed" if was_running
                      else f"exited {p.proc.returncode}")
            for p, was_running in zip(processes, running)))
      time.sleep(0.05)
  finally:
    for p in processes:
      p.stop()
  return [p.proc.returncode for p in processes]


# --- Floating-point comparisons (issue #18) --------------------------------------------------
# Two programs computing the same function in floating point agree only up to rounding: XLA:CPU
# emits other code for AVX2 and AVX-512 (FMA, vector widths, reduction trees), jit fuses ops
# that eager mode rounds one by one, and ONNX Runtime / TensorFlow / TFLite / PyTorch pick their
# own kernels. Such comparisons use `assert_close` / `approx`, with tolerances derived from the
# dtype computed in and the number of rounding steps. Bit-exact comparisons are kept only where
# exactness is the promise (the same compiled program on the same machine: resume, determinism
# across device counts; integer and 8-bit data; checkpoints; shapes, indices, PRNG), and say so.


def eps(dtype) -> float:
  """Machine epsilon: float32 1.2e-7, bfloat16 7.8e-3, float16 9.8e-4, float64 2.2e-16."""
  return float(jax.numpy.finfo(dtype).eps)


def tolerance(dtype=np.float32, ops: int = 1, magnitude: float = 1.0, ulps: float = 2) -> dict:
  """`rtol` / `atol` for `np.testing.assert_allclose` of results computed in `dtype`.

  Two computations of a sum of `ops` terms, each rounded in its own order, differ by at most
  about `ops * eps * sum(|terms|)` (Higham's bound, eps / 2 per rounding, twice): so
  `rtol = ulps * ops * eps(dtype)`, `ulps` the epsilons allowed per step (2: a transcendental
  or a conversion may be one ulp off in each runtime). `atol = rtol * magnitude`, `magnitude`
  the size of the values the result is made of: an element near zero can be a sum of large
  terms that cancel, so its error is relative to them, not to itself.

  Args:
    dtype: the dtype the values were computed (rounded) in.
    ops: rounding steps to one result: the length of the dot products / reductions, summed
      over the layers of a network (`network_ops`); 1 for one rounding, e.g. a cast.
    magnitude: the size of the terms (default 1: values in [0, 1]).
    ulps: epsilons per step.
  """
  rtol = ulps * ops * eps(dtype)
  return {"rtol": rtol, "atol": rtol * magnitude}


def assert_close(actual, desired, dtype=np.float32, ops: int = 1, magnitude=None,
                 ulps: float = 2, err_msg: str = "") -> None:
  """`np.testing.assert_allclose(actual, desired, **tolerance(dtype, ops, magnitude, ulps))`
  in float64 (bfloat16 included); `magnitude` defaults to max |desired| (pass it where the
  expected values are all zero, or much smaller than the terms they are made of)."""
  actual = np.asarray(actual).astype(np.float64)
  desired = np.asarray(desired).astype(np.float64)
  if magnitude is None:
    magnitude = float(np.max(np.abs(desired), initial=0.0))
  np.testing.assert_allclose(actual, desired, **tolerance(dtype, ops, magnitude, ulps),
                             err_msg=err_msg)


def approx(expected, dtype=np.float32, ops: int = 1, magnitude=None, ulps: float = 2):
  """`pytest.approx(expected)` within `tolerance(dtype, ops, magnitude, ulps)`; `magnitude`
  defaults to |expected|."""
  if magnitude is None:
    magnitude = float(np.max(np.abs(np.asarray(expected, np.float64)), initial=0.0))
  tol = tolerance(dtype, ops, magnitude, ulps)
  return pytest.approx(expected, rel=tol["rtol"], abs=tol["atol"])


def network_ops(variables, dtype=np.float32) -> int:
  """Rounding steps from an input to one output of a feed-forward network (`ops` of
  `tolerance`): in float32 the multiply-adds of every layer, i.e. the sum of the kernels'
  fan-ins (every leaf of 2 or more dimensions counts as a kernel; SwinIR's position-bias
  tables stand in for the attention's own reductions). 16-bit dtypes accumulate in float32, so
  there only the layers' roundings to 16 bits count: 2 per layer, i.e. with `ulps=1` four
  half-ulp roundings (the layer's output, its bias, activation and residual add); compare two
  16-bit programs with `ulps=2` (each rounds on its own), one against float32 with `ulps=1`."""
  kernels = [leaf for leaf in jax.tree.leaves(variables) if np.ndim(leaf) >= 2]
  if np.dtype(dtype).itemsize < 4:
    return 2 * len(kernels)
  return sum(int(np.prod(np.shape(leaf)[:-1])) for leaf in kernels)


def assert_levels_close(actual, desired, atol: float) -> None:
  """Quantized outputs (in levels, e.g. 0..255) of two programs whose float values agree within
  `atol` levels: a value that close to a rounding tie may round either way, so they differ by
  at most one level, at no more than a fraction `2 * atol` of the values (fractional parts
  spread evenly; plus one value), far fewer than a truncating or off-by-one path changes."""
  diff = np.abs(np.asarray(actual, np.float64) - np.asarray(desired, np.float64))
  assert diff.max(initial=0.0) <= 1 + 1e-3, f"off by up to {diff.max()} levels"
  flipped = int(np.sum(diff > 0.5))
  assert flipped <= 2 * atol * diff.size + 1, f"{flipped} of {diff.size} values differ"


def assert_trained_close(a, b, ops: int, learning_rate: float, steps: int) -> None:
  """Trees of a training state (parameters, BatchNorm statistics, ...) computed by two programs
  that round differently (gradients summed over other devices / processes, other fusions):
  `steps` Adam updates of at most about `learning_rate` each carry their gradients' relative
  rounding (`ops` steps: the network's and the batch's sums), so `atol` is that on the scale
  `steps * learning_rate`; statistics averaged over the batch round relative to themselves
  (`rtol` of `ops` steps)."""
  for x, y in zip(jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b)),
                  strict=True):
    np.testing.assert_allclose(
        np.asarray(x, np.float64), np.asarray(y, np.float64),
        rtol=tolerance(ops=ops)["rtol"],
        atol=tolerance(ops=ops, magnitude=steps * learning_rate)["atol"])
