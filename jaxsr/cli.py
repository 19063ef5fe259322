"""`run(main)`: `absl.app.run` for jaxsr's programs, where a user's mistake ends in one message.

  error: <message naming the fix>

on stderr, and exit status 2 for a usage error (a missing, malformed or unknown flag, an unknown
`--config.<key>`, a config file that cannot be loaded, `app.UsageError`) or 1 for an error the
program found in what it was given (`USER_ERRORS`: a ValueError such as an invalid config or a
missing dataset, a missing or unreadable file, a missing optional package). Any other exception
is a bug and keeps its traceback. `JAXSR_TRACEBACK=1` in the environment keeps the traceback of
every error (for bug reports).
"""

import os
import pickle
import sys
from typing import Callable, List, NoReturn, Sequence, Tuple

from absl import app
from absl import flags
# `is_config_flag` is documented for users but not re-exported by the package.
from ml_collections.config_flags import config_flags

TRACEBACK_ENV = "JAXSR_TRACEBACK"
USAGE_EXIT = 2
ERROR_EXIT = 1
# Raised by the programs for bad input: invalid configs, data specs, weights and checkpoints;
# files that are missing, unreadable or not what they should be (a .pth that is no torch state
# dict); optional packages not installed.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
               PermissionError, pickle.UnpicklingError, ImportError)


def show_tracebacks() -> bool:
  """True when JAXSR_TRACEBACK asks for the full traceback of user errors."""
  return os.environ.get(TRACEBACK_ENV, "").strip().lower() not in ("", "0", "false", "no")


def fail(message: str, code: int = ERROR_EXIT) -> NoReturn:
  """Prints `error: <message>` on stderr and exits with `code`."""
  sys.stdout.flush()
  print(f"error: {message}", file=sys.stderr, flush=True)
  raise SystemExit(code)


def first_line(error: BaseException) -> str:
  """The first line of `error`'s text, or its type's name when it has none."""
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__


def error_message(error: BaseException) -> str:
  """The text of `error` for `fail`: an OSError names its file, not its errno."""
  if isinstance(error, OSError) and error.strerror and error.filename:
    return f"{error.filename}: {error.strerror}"
  return str(error) or type(error).__name__


def _missing_key(error: AttributeError) -> Tuple[str, str]:
  """(key, 'Did you mean ...' hint or '') of ml_collections' error for a missing field."""
  inner = error.args[0] if error.args else ""
  if isinstance(inner, KeyError) and inner.args:
    inner = inner.args[0]
  key, _, hint = str(inner).partition("\n")
  return key.strip("\"'"), hint.strip()


def _config_override(argv: Sequence[str], key: str) -> str:
  """The `--<flag>.<path>` argument whose path holds `key` (ml_collections names only the
  key), or '' if none does."""
  for arg in argv[1:]:
    name = arg.lstrip("-").split("=", 1)[0]
    if key and key in name.split(".")[1:]:
      return "--" + name
  return ""


def parse_flags(argv: List[str]) -> List[str]:
  """`flags.FLAGS(argv)`; flag and config-file errors end in `fail(..., USAGE_EXIT)`."""
  try:
    argv = flags.FLAGS(argv)
    for name in list(flags.FLAGS):
      _check_config_loaded(flags.FLAGS[name])
    return argv
  except flags.Error as e:
    if show_tracebacks():
      raise
    fail(f"{e}\n(--helpshort lists the flags)", USAGE_EXIT)
  except AttributeError as e:  # ml_collections: an override of a key the config lacks.
    key, hint = _missing_key(e)
    override = _config_override(argv, key)
    if show_tracebacks() or not override:
      raise
    fail(f"unknown config key {override}: {hint or 'no such field'} (the fields are in the "
         "config file and jaxsr/config_base.py)", USAGE_EXIT)


def _check_config_loaded(flag: flags.Flag) -> None:
  """ml_collections defers the error of a config file it could not load to the config's first
  use: raises it now, as a flags.Error."""
  if config_flags.is_config_flag(flag) and flag.value is not None:
    try:
      hasattr(flag.value, "lock")  # Any attribute of a config that failed to load raises.
    except OSError as e:
      path = config_flags.get_config_filename(flag).split(":", 1)[0]
      problem = ("no such file" if not os.path.isfile(path)
                 else error_message(e.__cause__ or e).splitlines()[-1].strip())
      raise flags.IllegalFlagValueError(f"--{flag.name}={path}: cannot load the config file: "
                                        f"{problem}") from None


def _guarded(main: Callable) -> Callable:
  """`main` whose usage and user errors end in `fail`."""

  def guarded_main(argv):
    try:
      return main(argv)
    except app.UsageError as e:
      if show_tracebacks():
        raise
      fail(str(e), USAGE_EXIT)
    except USER_ERRORS as e:
      if show_tracebacks():
        raise
      fail(error_message(e), ERROR_EXIT)

  return guarded_main


def run(main: Callable, argv=None) -> None:
  """`app.run(main)` with one-line user errors (see the module docstring)."""
  app.run(_guarded(main), argv=argv, flags_parser=parse_flags)
