"""JAX's persistent compilation cache, on by default in jaxsr's programs (jaxsr/compilation_cache.py):
a resumed run loads what the first run compiled; `off`, the environment's defaults and an
unwritable directory."""

import os
import re
import sys

import pytest

from jaxsr import compilation_cache
from tests import utils

SUMMARY = re.compile(r"Compilation cache (?P<dir>\S+): (?P<loaded>\d+) programs loaded .*?, "
                     r"(?P<saved>\d+) compiled and saved .*?, (?P<not_saved>\d+) compiled, not "
                     r"saved")
OFF_SUMMARY = re.compile(r"Compilation cache off \((?P<why>.*)\): (?P<compiled>\d+) programs "
                         r"compiled")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
  root = tmp_path_factory.mktemp("images")
  return (utils.make_image_folder(root / "train", count=6),
          utils.make_image_folder(root / "val", count=2, seed=1))


def _env(tmp_path, **extra):
  """A jaxsr process's environment without the test suite's cache (conftest's
  $JAX_COMPILATION_CACHE_DIR) or the user's, every compiled program saved (the tiny programs
  compile faster than the 0.1 s default), and a home of its own: nothing outside tmp_path."""
  env = utils.process_env(JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                          HOME=str(tmp_path / "home"))
  for name in (compilation_cache.JAX_DIR_ENV, compilation_cache.JAX_ENABLE_ENV,
               compilation_cache.ENV, "XDG_CACHE_HOME"):
    env.pop(name, None)
  env.update(extra)
  return env


def _summary(stderr: str) -> dict:
  """The end-of-run line of `jaxsr.main`, parsed."""
  matches = [m for m in map(SUMMARY.search, stderr.splitlines()) if m]
  assert len(matches) == 1, utils.tail(stderr)
  m = matches[0]
  return {"dir": m["dir"], **{k: int(m[k]) for k in ("loaded", "saved", "not_saved")}}


def _entries(directory) -> set:
  """The cache's entries (JAX writes `<key>-cache` files)."""
  if not os.path.isdir(directory):
    return set()
  return {name for name in os.listdir(directory) if name.endswith("-cache")}


def _files(directory) -> list:
  return [os.path.join(d, f) for d, _, files in os.walk(directory) for f in files]


def _bicubic_eval(tmp_path, val_dir, *flags):
  """`python -m jaxsr.main --mode=eval` of the bicubic baseline (a few small programs, ~4 s)."""
  return [sys.executable, "-m", "jaxsr.main", "--config=configs/bicubic.py", "--mode=eval",
          f"--workdir={tmp_path / 'bicubic'}", f"--config.eval.datasets=folder:{val_dir}",
          "--config.scale=2", *flags]


def test_resumed_run_compiles_nothing_it_compiled_before(images, tmp_path):
  """Train 4 steps (checkpoints at 2 and 4, eval at 3 and 4), then resume to 8 in a new process:
  every program the resumed run needs (train step, eval SR, the input and PRNG helpers) is
  loaded from the cache; it compiles nothing. The first run compiles one program more than the
  second loads: the parameter initialisation, which a resumed run replaces by the restore."""
  config = utils.tiny_config_file(tmp_path / "config.py", *images)
  cache, workdir = tmp_path / "cache", tmp_path / "run"
  env = _env(tmp_path)

  def run(steps):
    return _summary(utils.run_process(
        [sys.executable, "-m", "jaxsr.main", f"--config={config}", f"--workdir={workdir}",
         f"--compilation_cache={cache}", f"--config.num_train_steps={steps}",
         "--config.checkpoint_every_steps=2", "--config.eval_every_steps=3"],
        env=env, check=True).stderr)

  first = run(4)
  assert first["dir"] == str(cache)
  assert first["loaded"] == 0 and first["not_saved"] == 0 and first["saved"] >= 3, first
  written = _entries(cache)
  assert len(written) == first["saved"]

  resumed = run(8)
  assert utils.saved_state(workdir)[1] == {"next_step": 8}
  assert resumed["saved"] == 0 and resumed["not_saved"] == 0, resumed  # No cache miss.
  assert resumed["loaded"] == first["saved"] - 1, (first, resumed)  # All but init.
  assert _entries(cache) == written


@pytest.mark.parametrize("how", ["flag"])  # "env" (same path): test_resolve_order.
def test_off_writes_nothing(images, tmp_path, how):
  """`--compilation_cache=off` (or `$JAXSR_COMPILATION_CACHE=off`): no cache anywhere, and the
  end-of-run line says so."""
  xdg = tmp_path / "xdg"
  env = _env(tmp_path, XDG_CACHE_HOME=str(xdg),
             **({compilation_cache.ENV: "off"} if how == "env" else {}))
  flags = ["--compilation_cache=off"] if how == "flag" else []
  result = utils.run_process(_bicubic_eval(tmp_path, images[1], *flags), env=env, check=True)
  off = [m for m in map(OFF_SUMMARY.search, result.stderr.splitlines()) if m]
  assert len(off) == 1 and int(off[0]["compiled"]) > 0, utils.tail(result.stderr)
  assert off[0]["why"] == ("--compilation_cache=off" if how == "flag"
                           else f"${compilation_cache.ENV}=off")
  assert _files(xdg) == [] and _files(tmp_path / "home" / ".cache" / "jaxsr") == []


# The others ($JAXSR_COMPILATION_CACHE, ~/.cache): test_resolve_order.
@pytest.mark.parametrize("where", ["xdg", "jax_env"])
def test_on_by_default_in_the_environment_s_directory(images, tmp_path, where):
  """Without the flag the cache is on: in $JAXSR_COMPILATION_CACHE, else JAX's own
  $JAX_COMPILATION_CACHE_DIR (kept), else $XDG_CACHE_HOME/jaxsr/jax_compilation_cache, else
  ~/.cache/jaxsr/jax_compilation_cache."""
  xdg, home = tmp_path / "xdg", tmp_path / "home"
  candidates = {"xdg": xdg / "jaxsr" / "jax_compilation_cache",
                "home": home / ".cache" / "jaxsr" / "jax_compilation_cache",
                "jaxsr_env": tmp_path / "jaxsr_env", "jax_env": tmp_path / "jax_env"}
  expected = candidates[where]
  extra = {"xdg": {"XDG_CACHE_HOME": str(xdg)}, "home": {},
           "jaxsr_env": {"XDG_CACHE_HOME": str(xdg), compilation_cache.ENV: str(expected),
                         compilation_cache.JAX_DIR_ENV: str(tmp_path / "jax_env")},
           "jax_env": {"XDG_CACHE_HOME": str(xdg),
                       compilation_cache.JAX_DIR_ENV: str(expected)}}[where]
  result = utils.run_process(_bicubic_eval(tmp_path, images[1]), env=_env(tmp_path, **extra),
                             check=True)
  summary = _summary(result.stderr)
  assert summary["dir"] == str(expected) and summary["saved"] > 0, summary
  assert len(_entries(expected)) == summary["saved"]
  assert [f for c in candidates.values() if c != expected for f in _files(c)] == []


def test_unwritable_cache_dir_warns_once_and_runs_without_it(images, tmp_path):
  """A cache directory that cannot be created (under a file: fails even as root) is one warning;
  the run completes without the cache."""
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  bad = blocker / "cache"
  result = utils.run_process(_bicubic_eval(tmp_path, images[1], f"--compilation_cache={bad}"),
                             env=_env(tmp_path), check=True)
  warnings = [line for line in result.stderr.splitlines() if "cannot be written" in line]
  assert len(warnings) == 1 and str(bad) in warnings[0], utils.tail(result.stderr)
  assert "Traceback" not in result.stderr
  off = [m for m in map(OFF_SUMMARY.search, result.stderr.splitlines()) if m]
  assert len(off) == 1 and off[0]["why"] == f"{bad} not writable", utils.tail(result.stderr)
  assert os.listdir(tmp_path / "bicubic")  # The evaluation ran and wrote its results.


def test_resolve_order():
  """Flag, then $JAXSR_COMPILATION_CACHE, then JAX's own settings (off, or its directory), then
  the per-user default; 'off' from the flag or jaxsr's variable."""
  env = {"XDG_CACHE_HOME": "/x", compilation_cache.ENV: "/j", compilation_cache.JAX_DIR_ENV: "/a"}
  resolve = compilation_cache.resolve
  assert resolve("/f", env, "/a") == ("/f", "--compilation_cache")
  assert resolve("OFF", env, "/a") == (None, "--compilation_cache=off")
  assert resolve(None, env, "/a") == ("/j", f"${compilation_cache.ENV}")
  assert resolve(None, dict(env, **{compilation_cache.ENV: "off"}), "/a")[0] is None
  assert resolve(None, {"XDG_CACHE_HOME": "/x", compilation_cache.JAX_DIR_ENV: "/a"}, "/a") == (
      "/a", f"${compilation_cache.JAX_DIR_ENV}")
  assert resolve(None, {compilation_cache.JAX_ENABLE_ENV: "false"}, "/a") == (
      None, f"${compilation_cache.JAX_ENABLE_ENV}=false")
  assert resolve(None, {"XDG_CACHE_HOME": "/x"}, None) == (
      "/x/jaxsr/jax_compilation_cache", "default")
  assert resolve("", {"XDG_CACHE_HOME": ""}, None)[0] == os.path.join(
      os.path.expanduser("~"), ".cache", "jaxsr", "jax_compilation_cache")
