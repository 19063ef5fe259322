"""JAX's persistent compilation cache for jaxsr's programs, on by default.

XLA compiles every jitted program again in every process: each resume, preemption restart, eval
and upscale of a large model waits minutes for GPU compiles of programs an earlier run already
compiled. `enable()`, called first thing in the `main()` of `jaxsr.main`, `jaxsr.upscale` and
`jaxsr.export`, points JAX's persistent cache at a directory shared by all runs of the user, so a
program compiled once is loaded from disk by the next process that needs it.

Where (the first that applies):
  1. `--compilation_cache=<dir>`, or `--compilation_cache=off` (no persistent cache);
  2. `$JAXSR_COMPILATION_CACHE` (a directory, or `off`);
  3. JAX's own settings, kept as they are: `$JAX_ENABLE_COMPILATION_CACHE=false` (off), else
     `$JAX_COMPILATION_CACHE_DIR` (or `jax_compilation_cache_dir` set before `main`);
  4. `$XDG_CACHE_HOME/jaxsr/jax_compilation_cache`, else `~/.cache/jaxsr/jax_compilation_cache`.

A cache directory that cannot be created or written is reported in one warning, and the run goes
on without the cache. The cache is trusted code: keep it private to its user (the default is in
the user's home). Deleting the directory (`rm -rf ~/.cache/jaxsr/jax_compilation_cache`) clears
it; JAX's `$JAX_COMPILATION_CACHE_MAX_SIZE` (bytes, needs the `filelock` package) bounds it.

Thresholds (jaxsr's defaults; the `JAX_PERSISTENT_CACHE_MIN_*` environment variables of JAX
override them):
  * `jax_persistent_cache_min_compile_time_secs` = `MIN_COMPILE_TIME_SECS` (JAX: 1 s): see there.
  * `jax_persistent_cache_min_entry_size_bytes` = -1 (JAX: 0, "may be overridden per
    filesystem"): no size floor. What a cache entry saves is compile time, whatever its size,
    and the compile-time threshold already keeps the trivial programs out.

`summary()` (logged by `log_summary()` at the end of `jaxsr.main`) counts, from `jax.monitoring`
events, the programs this process loaded from the cache, compiled and saved, and compiled
without saving.
"""

import collections
import os
import tempfile
import threading
from typing import Dict, List, Mapping, Optional, Tuple

from absl import flags
from absl import logging
import jax
from jax.experimental.compilation_cache import compilation_cache as jax_compilation_cache

ENV = "JAXSR_COMPILATION_CACHE"
JAX_DIR_ENV = "JAX_COMPILATION_CACHE_DIR"
JAX_ENABLE_ENV = "JAX_ENABLE_COMPILATION_CACHE"
JAX_MIN_COMPILE_TIME_ENV = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"
JAX_MIN_ENTRY_SIZE_ENV = "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"
OFF = "off"
# Programs compiling faster than this are not written. JAX's default, 1 s, leaves out programs
# that add up: evaluation and upscaling compile one program per image shape (a benchmark set's
# images all differ), each well under 1 s for a small model, and a resumed run pays them all
# again. Measured on CPU (tiny MSRResNet): trivial programs (dtype conversions, broadcasts, PRNG
# seeding) compile in 0.01-0.04 s and would save nothing; the SR program of one eval shape
# compiles in 0.4 s and loads in 6 ms, the train step 2.4 s / 0.09 s, init 6.4 s. 0.1 s keeps
# the trivial ones out and everything that is worth a file read in.
MIN_COMPILE_TIME_SECS = 0.1
MIN_ENTRY_SIZE_BYTES = -1

_FLAG = flags.DEFINE_string(
    "compilation_cache", None,
    "Directory of JAX's persistent compilation cache, shared by runs so that a program compiled "
    "once is loaded by later processes (resume, eval, upscale), or 'off'. Default: "
    f"${ENV}, else ${JAX_DIR_ENV}, else $XDG_CACHE_HOME/jaxsr/jax_compilation_cache (default "
    "~/.cache/jaxsr/jax_compilation_cache). Delete the directory to clear it.")

# JAX's monitoring events (jax/_src/compiler.py, compilation_cache.py, dispatch.py). Every
# program XLA compiles or loads from the cache ends with one BACKEND_COMPILE event (a duration,
# with fun_name), after, in the same thread, HIT_EVENT if it was loaded or PUT_EVENT if it was
# compiled and written to the cache (JAX names that event `cache_misses`: it is recorded only
# when an entry is written, not for misses below the thresholds).
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
HIT_EVENT = "/jax/compilation_cache/cache_hits"
PUT_EVENT = "/jax/compilation_cache/cache_misses"
# Compile time recorded with the entry (whole seconds: JAX truncates) minus the read time.
SAVED_TIME_EVENT = "/jax/compilation_cache/compile_time_saved_sec"

LOADED, SAVED, NOT_SAVED = "loaded", "compiled and saved", "compiled, not saved"


class _Usage:
  """What `enable()` chose and what the programs of this process did (the listeners' state)."""

  def __init__(self):
    self.lock = threading.Lock()
    self.local = threading.local()  # outcome of the program being compiled in this thread
    self.programs: Dict[str, List[str]] = collections.defaultdict(list)  # outcome -> names
    self.seconds: Dict[str, float] = collections.defaultdict(float)  # outcome -> compile s
    self.saved_seconds = 0.0
    self.listening = False
    self.directory: Optional[str] = None  # None: no persistent cache
    self.reason = ""  # why there is none

  def on_event(self, event: str, **kwargs) -> None:
    del kwargs
    if event == HIT_EVENT:
      self.local.outcome = LOADED
    elif event == PUT_EVENT:
      self.local.outcome = SAVED

  def on_duration(self, event: str, duration_secs: float, **kwargs) -> None:
    if event == SAVED_TIME_EVENT:
      with self.lock:
        self.saved_seconds += max(duration_secs, 0.0)
    elif event == BACKEND_COMPILE_EVENT:
      outcome = getattr(self.local, "outcome", NOT_SAVED)
      self.local.outcome = NOT_SAVED
      with self.lock:
        self.programs[outcome].append(str(kwargs.get("fun_name", "?")))
        self.seconds[outcome] += duration_secs


_usage = _Usage()


def default_dir(environ: Mapping[str, str] = os.environ) -> str:
  """`$XDG_CACHE_HOME/jaxsr/jax_compilation_cache`, else `~/.cache/jaxsr/...`."""
  base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "jaxsr", "jax_compilation_cache")


def resolve(flag_value: Optional[str], environ: Mapping[str, str] = os.environ,
            jax_dir: Optional[str] = None) -> Tuple[Optional[str], str]:
  """(cache directory or None for off, where that choice comes from) for the flag's value
  (None: not given), the environment and JAX's configured directory (see the module
  docstring for the order)."""
  for value, source in ((flag_value, "--compilation_cache"), (environ.get(ENV), f"${ENV}")):
    if value is not None and value.strip():
      value = value.strip()
      if value.lower() == OFF:
        return None, f"{source}={OFF}"
      return os.path.abspath(os.path.expanduser(value)), source
  if environ.get(JAX_ENABLE_ENV, "").strip().lower() in ("0", "false", "no", "off"):
    return None, f"${JAX_ENABLE_ENV}={environ[JAX_ENABLE_ENV]}"
  if jax_dir:
    return jax_dir, f"${JAX_DIR_ENV}" if environ.get(JAX_DIR_ENV) else "jax_compilation_cache_dir"
  return default_dir(environ), "default"


def _is_local(path: str) -> bool:
  return "://" not in path or path.startswith("file://")


def check_writable(directory: str) -> Optional[str]:
  """None if `directory` (local) can be created and written, else why not. Remote paths
  (gs://...) are left to JAX."""
  if not _is_local(directory):
    return None
  local = directory[len("file://"):] if directory.startswith("file://") else directory
  try:
    os.makedirs(local, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=local, prefix=".jaxsr_write_test_"):
      pass
  except OSError as e:
    return e.strerror or str(e)
  return None


def _register_listeners() -> None:
  if not _usage.listening:  # Once per process: enable() may run again (tests).
    jax.monitoring.register_event_listener(_usage.on_event)
    jax.monitoring.register_event_duration_secs_listener(_usage.on_duration)
    _usage.listening = True


def _set_default(name: str, env: str, value) -> None:
  """`jax.config.update(name, value)` unless the user set JAX's environment variable."""
  if env not in os.environ:
    jax.config.update(name, value)


def enable(flag_value: Optional[str] = None) -> Optional[str]:
  """Turns JAX's persistent compilation cache on (or off) as the flag (default: its parsed
  value) and the environment say, before anything compiles; returns the directory, or None
  when the cache is off. An unusable directory is one warning and no cache, never an error."""
  if flag_value is None:
    flag_value = _FLAG.value if flags.FLAGS.is_parsed() else None
  _register_listeners()
  directory, source = resolve(flag_value, os.environ, jax.config.jax_compilation_cache_dir)
  if directory is not None:
    problem = check_writable(directory)
    if problem:
      logging.warning("Compilation cache %s (%s) cannot be written (%s): running without the "
                      "persistent compilation cache; every program compiles. Set "
                      "--compilation_cache=<dir> or $%s to a writable directory, or 'off'.",
                      directory, source, problem, ENV)
      _usage.reason = f"{directory} not writable"
      directory = None
    else:
      _usage.reason = ""
  else:
    _usage.reason = source
  _usage.directory = directory
  # JAX opens its cache once, at the first compile: whatever compiled before now (nothing in
  # jaxsr's programs), the settings below apply from here on.
  jax_compilation_cache.reset_cache()
  if directory is None:
    jax.config.update("jax_enable_compilation_cache", False)
    jax.config.update("jax_compilation_cache_dir", None)
    return None
  jax.config.update("jax_enable_compilation_cache", True)
  jax.config.update("jax_compilation_cache_dir", directory)
  _set_default("jax_persistent_cache_min_compile_time_secs", JAX_MIN_COMPILE_TIME_ENV,
               MIN_COMPILE_TIME_SECS)
  _set_default("jax_persistent_cache_min_entry_size_bytes", JAX_MIN_ENTRY_SIZE_ENV,
               MIN_ENTRY_SIZE_BYTES)
  logging.info("Compilation cache: %s (%s; saves programs that compile in %g s or more)",
               directory, source, jax.config.jax_persistent_cache_min_compile_time_secs)
  return directory


def usage() -> Dict[str, List[str]]:
  """Names of the programs this process compiled or loaded, by outcome (LOADED, SAVED,
  NOT_SAVED), since `enable()`."""
  with _usage.lock:
    return {outcome: list(_usage.programs[outcome]) for outcome in (LOADED, SAVED, NOT_SAVED)}


def summary() -> str:
  """One line on the cache's use by this process, e.g. `Compilation cache <dir>: 6 programs
  loaded (0.1 s; >= 1.9 s of compilation saved), 1 compiled and saved (2.4 s), 3 compiled, not
  saved (0.1 s; under the 0.1 s threshold or with host callbacks)` (the saving is JAX's
  estimate, from compile times it stores in whole seconds)."""
  with _usage.lock:
    count = {k: len(v) for k, v in _usage.programs.items()}
    seconds = dict(_usage.seconds)
    saved_seconds = _usage.saved_seconds
  not_saved = count.get(NOT_SAVED, 0)
  if _usage.directory is None:
    return (f"Compilation cache off ({_usage.reason or 'not enabled'}): {not_saved} programs "
            f"compiled ({seconds.get(NOT_SAVED, 0.0):.1f} s)")
  if jax.process_index() != 0:
    why = "only process 0 writes the cache"
  else:
    why = (f"under the {jax.config.jax_persistent_cache_min_compile_time_secs:g} s threshold "
           "or with host callbacks")
  return (f"Compilation cache {_usage.directory}: {count.get(LOADED, 0)} programs loaded "
          f"({seconds.get(LOADED, 0.0):.1f} s; >= {saved_seconds:.1f} s of compilation saved), "
          f"{count.get(SAVED, 0)} compiled and saved ({seconds.get(SAVED, 0.0):.1f} s), "
          f"{not_saved} compiled, not saved ({seconds.get(NOT_SAVED, 0.0):.1f} s; {why})")


def log_summary() -> None:
  """Logs `summary()` (at the end of a run)."""
  logging.info("%s", summary())
