"""Orbax checkpoints in `<workdir>/checkpoints`: the train state plus the input position.

Each checkpoint holds two items: `state` (the train-state pytree) and `data` (JSON: the input
position `next_step`, and the validation metrics it was saved with). The manager keeps the last
`keep` checkpoints plus the best one by validation Y-PSNR (`val_psnr_y`), when validation ran.

Saves are asynchronous: `save(..., wait=False)` returns once the arrays are copied to host memory
and orbax writes them in a background thread, into a temporary directory renamed into place only
when complete — a crash mid-write leaves the previous checkpoints as they were. A failed write
(disk full, permissions) surfaces as `CheckpointSaveError` at the next save, `wait` or `close`.
`restore_latest` falls back to the newest checkpoint that reads, setting unreadable newer ones
aside in `<workdir>/checkpoints_unreadable/`.
"""

import contextlib
import logging as std_logging
import os
import time
from typing import Any, Dict, Optional, Tuple

from absl import logging
from etils import epath
import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from jaxsr import cli

BEST_METRIC = "val_psnr_y"


def quiet_orbax_info() -> None:
  """Drops orbax's INFO records (a dozen lines per save/restore) from the absl log: for the
  command-line tools whose own INFO lines are the output."""
  def keep(record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or "orbax" not in record.pathname
  logging.get_absl_handler().addFilter(keep)


class CheckpointSaveError(OSError):
  """Writing a checkpoint failed; the message names the step, the reason and the last good one."""


def _absolute(path: str) -> str:
  """Absolute local path (orbax requires it); URLs such as gs://bucket/run kept as they are."""
  return path if "://" in path else os.path.abspath(path)


def _without_orbax_traceback(record: std_logging.LogRecord) -> bool:
  if "orbax" in record.pathname and record.exc_info:
    record.exc_info, record.exc_text = None, None
  return True


def quiet_orbax_tracebacks() -> None:
  """Keeps orbax's error lines but drops their tracebacks (a failed background write logs one;
  `CheckpointSaveError` then says what failed and what to do)."""
  absl_logger = std_logging.getLogger("absl")
  if _without_orbax_traceback not in absl_logger.filters:
    absl_logger.addFilter(_without_orbax_traceback)


def checkpoint_dir(workdir: str) -> str:
  """`<workdir>/checkpoints`, absolute (orbax requires absolute paths)."""
  return _absolute(os.path.join(workdir, "checkpoints"))


def _best_value(metrics: Dict[str, float]) -> float:
  return metrics[BEST_METRIC]


def create_manager(workdir: str, keep: int = 3, read_only: bool = False) -> ocp.CheckpointManager:
  """A CheckpointManager keeping the last `keep` checkpoints and the best by `val_psnr_y`."""
  policy = checkpoint_managers.AnyPreservationPolicy([
      checkpoint_managers.LatestN(n=keep),
      checkpoint_managers.BestN(get_metric_fn=_best_value, reverse=False, n=1,
                                keep_checkpoints_without_metrics=False),
  ])
  options = ocp.CheckpointManagerOptions(
      best_fn=_best_value, best_mode="max", preservation_policy=policy, create=not read_only,
      read_only=read_only, enable_async_checkpointing=not read_only,
      cleanup_tmp_directories=not read_only)  # Left by a crash in the middle of a save.
  return ocp.CheckpointManager(
      checkpoint_dir(workdir), options=options,
      item_handlers={"state": ocp.StandardCheckpointHandler(),
                     "data": ocp.JsonCheckpointHandler()})


def save(manager: ocp.CheckpointManager, step: int, state: Any, data_state: Dict[str, Any],
         metrics: Optional[Dict[str, float]] = None, wait: bool = True) -> None:
  """Writes `state` and `data_state` at `step` (no-op if that step exists already).

  With `wait=False` it returns once the arrays are on the host; the files are written in the
  background (the state may then be donated to the next step).

  Raises:
    CheckpointSaveError: this save failed, or (`wait=False`) the previous one did.
  """
  if step in manager.all_steps():
    return
  start = time.perf_counter()
  with _save_errors(manager, step):
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                               data=ocp.args.JsonSave(data_state)),
                 metrics=metrics, force=True)
  if wait:
    wait_until_saved(manager)
  logging.info("%s checkpoint at step %d in %s (%.2f s in the loop)",
               "Saved" if wait else "Saving", step, manager.directory,
               time.perf_counter() - start)


def wait_until_saved(manager: ocp.CheckpointManager) -> None:
  """Blocks until background writes end. Raises CheckpointSaveError if one failed."""
  with _save_errors(manager, None):
    manager.wait_until_finished()


@contextlib.contextmanager
def _save_errors(manager: ocp.CheckpointManager, step: Optional[int]):
  """Context: an exception from orbax while saving -> CheckpointSaveError with the fix."""
  try:
    yield
  except CheckpointSaveError:
    raise
  except Exception as error:  # pylint: disable=broad-except; any write error, re-raised.
    what = f"at step {step}" if step is not None else "(background write)"
    good = _finished_steps(manager)
    kept = (f"the checkpoint at step {good[-1]} is intact" if good else
            "no earlier checkpoint exists")
    raise CheckpointSaveError(
        f"Saving the checkpoint {what} in {manager.directory} failed "
        f"({type(error).__name__}: {cli.first_line(error)}); {kept}. Free space or fix "
        "the permissions of the workdir and re-run the same command to resume.") from error


def _finished_steps(manager: ocp.CheckpointManager) -> list:
  """Steps whose checkpoint directory is complete on disk (not a temporary one)."""
  directory = epath.Path(manager.directory)
  if not directory.exists():
    return []
  return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


def split_checkpoint_path(path: str, default: str = "latest") -> Tuple[str, str]:
  """`<workdir>/checkpoints/<step>` -> (workdir, '<step>'); `<workdir>` -> (workdir, default)."""
  path = os.path.normpath(path)
  parent, leaf = os.path.split(path)
  if leaf.isdigit() and os.path.basename(parent) == "checkpoints":
    return os.path.dirname(parent), leaf
  return path, default


def resolve_step(manager: ocp.CheckpointManager, which: str) -> int:
  """'best' | 'latest' | '<step>' -> a saved step; ValueError when there is none."""
  steps = manager.all_steps()
  if not steps:
    raise ValueError(f"No checkpoint in {manager.directory}")
  if which == "latest":
    return manager.latest_step()
  if which == "best":
    # Falls back to the latest step when no checkpoint carries validation metrics (orbax then
    # returns None).
    best = manager.best_step()
    return manager.latest_step() if best is None else best
  try:
    step = int(which)
  except ValueError:
    raise ValueError(f"eval.checkpoint must be best, latest or a step, got '{which}'") from None
  if step not in steps:
    raise ValueError(f"No checkpoint at step {step} in {manager.directory}; have {sorted(steps)}")
  return step


def restore(manager: ocp.CheckpointManager, step: int,
            abstract_state: Any) -> Tuple[Any, Dict[str, Any]]:
  """Restores (state, data_state) at `step` with the shapes/shardings of `abstract_state`."""
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
  return restored["state"], restored["data"]


def restore_latest(manager: ocp.CheckpointManager,
                   abstract_state: Any) -> Optional[Tuple[Any, Dict[str, Any], int]]:
  """(state, data_state, step) of the newest checkpoint that restores, or None when there is
  none. Newer ones that fail to read (truncated or corrupt files) are moved to
  `<workdir>/checkpoints_unreadable/<step>` with a warning naming each and why, so the run
  resumes from the last good one and later saves of those steps are not skipped.

  Raises:
    The newest checkpoint's error when none restores (e.g. another model's checkpoints).
  """
  failures = []
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      state, data_state = restore(manager, step, abstract_state)
    except Exception as e:  # pylint: disable=broad-except; any read error, re-raised below.
      logging.warning("Checkpoint at step %d in %s cannot be restored (%s: %s).", step,
                      manager.directory, type(e).__name__, cli.first_line(e))
      failures.append((step, e))
      continue
    if failures:
      _set_aside(manager, [s for s, _ in failures])
      logging.warning("Resuming from step %d, the newest checkpoint that restores; unreadable "
                      "newer step(s) %s set aside.", step, [s for s, _ in failures])
    return state, data_state, step
  if failures:
    raise failures[0][1]
  return None


def _set_aside(manager: ocp.CheckpointManager, steps) -> None:
  """Moves the directories of `steps` out of the manager's sight (chief), then reloads."""
  directory = epath.Path(manager.directory)
  aside = directory.parent / "checkpoints_unreadable"
  if jax.process_index() == 0:
    aside.mkdir(parents=True, exist_ok=True)
    for step in steps:
      target = aside / f"{step}.{int(time.time())}"
      (directory / str(step)).rename(target)
      logging.warning("Moved the unreadable checkpoint %s to %s.", directory / str(step), target)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices("jaxsr_checkpoints_set_aside")
  manager.reload()


def restore_on_this_host(manager: ocp.CheckpointManager, step: int,
                         sharding: jax.sharding.Sharding) -> Tuple[Any, Dict[str, Any]]:
  """Restores (state as saved, data_state) at `step` without a model: every array is placed
  with `sharding`, whatever topology saved it (a TPU pod checkpoint on one CPU, say)."""
  metadata = manager.item_metadata(step)["state"]
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding),
                        metadata)
  return restore(manager, step, target)


def _signature(tree: Any):
  return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


def restore_generator(manager: ocp.CheckpointManager, step: int, like: Dict[str, Any],
                      use_ema: bool, sharding: jax.sharding.Sharding) -> Dict[str, Any]:
  """The generator's Linen variables `{'params', **model_state}` saved at `step` by a PSNR or a
  GAN run (EMA params when `use_ema`), placed with `sharding`; no optimizer or discriminator
  is needed to read them.

  Args:
    manager: where the checkpoint is.
    step: a saved step.
    like: variables (arrays or ShapeDtypeStructs) of the model they must fit.
    use_ema: take `ema_params` instead of `params`.
    sharding: placement of every array.

  Raises:
    ValueError: the saved variables do not have the structure, shapes and dtypes of `like`.
  """
  return _restore_variables(manager, step, like, sharding,
                            "ema_params" if use_ema else "params", "model_state",
                            "check model.* and scale against the run that wrote it.")


def restore_discriminator(manager: ocp.CheckpointManager, step: int, like: Dict[str, Any],
                          sharding: jax.sharding.Sharding) -> Dict[str, Any]:
  """The discriminator's Linen variables `{'params': d_params, **d_model_state}` saved at `step`
  by a GAN run (or `jaxsr.convert` of a discriminator), placed with `sharding`.

  Raises:
    ValueError: the checkpoint holds no discriminator (a PSNR run), or its variables do not
      have the structure, shapes and dtypes of `like`.
  """
  return _restore_variables(manager, step, like, sharding, "d_params", "d_model_state",
                            "check discriminator.* against the run that wrote it.")


def _restore_variables(manager: ocp.CheckpointManager, step: int, like: Dict[str, Any],
                       sharding: jax.sharding.Sharding, params_key: str, state_key: str,
                       hint: str) -> Dict[str, Any]:
  """`{'params': saved[params_key], **saved[state_key]}` at `step`, checked against `like`."""
  saved, _ = restore_on_this_host(manager, step, sharding)
  if params_key not in saved:
    raise ValueError(f"The checkpoint at step {step} in {manager.directory} holds no "
                     f"'{params_key}' (it has {sorted(saved)})")
  variables = {"params": saved[params_key], **saved.get(state_key, {})}
  if _signature(variables) != _signature(like):
    raise ValueError(f"The checkpoint at step {step} in {manager.directory} does not fit this "
                     f"model (parameter structure, shapes or dtypes differ): {hint}")
  return variables
