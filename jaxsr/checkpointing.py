"""Orbax checkpoints in `<workdir>/checkpoints`: the train state plus the input position.

Each checkpoint holds two items: `state` (the train-state pytree) and `data` (JSON: the input
position `next_step`, and the validation metrics it was saved with). The manager keeps the last
`keep` checkpoints plus the best one by validation Y-PSNR (`val_psnr_y`), when validation ran.
"""

import logging as std_logging
import os
from typing import Any, Dict, Optional, Tuple

from absl import logging
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

BEST_METRIC = "val_psnr_y"


def quiet_orbax_info() -> None:
  """Drops orbax's INFO records (a dozen lines per save/restore) from the absl log: for the
  command-line tools whose own INFO lines are the output."""
  def keep(record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or "orbax" not in record.pathname
  logging.get_absl_handler().addFilter(keep)


def checkpoint_dir(workdir: str) -> str:
  """`<workdir>/checkpoints`, absolute (orbax requires absolute paths)."""
  return os.path.abspath(os.path.join(workdir, "checkpoints"))


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
      read_only=read_only, enable_async_checkpointing=False)
  return ocp.CheckpointManager(
      checkpoint_dir(workdir), options=options,
      item_handlers={"state": ocp.StandardCheckpointHandler(),
                     "data": ocp.JsonCheckpointHandler()})


def save(manager: ocp.CheckpointManager, step: int, state: Any, data_state: Dict[str, Any],
         metrics: Optional[Dict[str, float]] = None) -> None:
  """Writes `state` and `data_state` at `step` (no-op if that step exists already)."""
  if step in manager.all_steps():
    return
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             data=ocp.args.JsonSave(data_state)),
               metrics=metrics, force=True)
  manager.wait_until_finished()
  logging.info("Saved checkpoint at step %d in %s", step, manager.directory)


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
