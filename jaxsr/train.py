"""`train_and_evaluate(config, workdir)`: the training loop (PSNR or GAN), read top to bottom.

Stages: validate config -> models, optimizers -> losses and train step -> restore (or init_from)
-> input pipeline at the restored position -> loop (step, log, validate, checkpoint) -> final
checkpoint. A GAN run differs only in its state (`GanState`) and step
(`steps.make_gan_train_step`). A non-finite metric stops the run before any checkpoint of the bad
state is written. SIGTERM on any process (preemption) stops every process at the same step, with
a checkpoint of it and the `<workdir>/STOPPED_ON_PREEMPTION` marker, and returns normally; Ctrl-C
saves the state after the step and raises `Interrupted` saying what was saved (a second Ctrl-C
saves the state reached at once, if it is whole). Checkpoints are written in
the background (`checkpointing.save(wait=False)`). The console shows one progress line per log
step (TensorBoard gets the same scalars).
"""

import pickle
import time
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
from clu import metric_writers
from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxsr import builders
from jaxsr import checkpointing
from jaxsr import cli
from jaxsr import config_base
from jaxsr import evaluate
from jaxsr import preemption
from jaxsr import sharding
from jaxsr import state as state_lib
from jaxsr.data import input_pipeline
from jaxsr.hub import cache as hub_cache
from jaxsr.hub import registry as hub_registry
from jaxsr.interop import load as interop_load


class NonFiniteError(FloatingPointError):
  """A loss or metric became NaN/Inf; the message names the term and the step."""


class Interrupted(KeyboardInterrupt):
  """Ctrl-C (or a second SIGTERM) stopped training; `str()` says what was saved."""


def check_finite(step_metrics: List[Dict[str, np.ndarray]], first_step: int) -> None:
  """Raises NonFiniteError naming every non-finite term of the first step that has one."""
  for offset, values in enumerate(step_metrics):
    bad = [f"{name}={value}" for name, value in sorted(values.items())
           if not np.all(np.isfinite(value))]
    if bad:
      raise NonFiniteError(
          f"Non-finite {', '.join(bad)} at step {first_step + offset + 1}; stopping without "
          "saving this state (the last good checkpoint is kept).")


class Progress:
  """Steps/s and ETA between log points, for the console progress line."""

  def __init__(self, start_step: int, num_steps: int):
    self.num_steps = num_steps
    self.last_step, self.last_time = start_step, time.perf_counter()

  def update(self, step: int) -> Dict[str, float]:
    now = time.perf_counter()
    rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    self.last_step, self.last_time = step, now
    return {"steps_per_s": rate, "eta_s": (self.num_steps - step) / max(rate, 1e-9)}


def _format_progress(step: int, total: int, means: Dict[str, float], speed: Dict[str, float]) -> str:
  eta = int(speed["eta_s"])
  terms = " ".join(f"{k}={v:.4g}" for k, v in sorted(means.items()))
  return (f"step {step}/{total} | {terms} | {speed['steps_per_s']:.2f} steps/s | "
          f"ETA {eta // 3600}h{eta % 3600 // 60:02d}m{eta % 60:02d}s")


def load_init_variables(init_from: str, like: Dict[str, Any], model_name: str = "",
                        scale: Optional[int] = None, registries: str = "") -> Dict[str, Any]:
  """The generator variables (EMA params, which equal the params when that run kept no EMA, and
  BatchNorm statistics) of `init_from` — a workdir (its latest checkpoint) or one checkpoint
  directory `<workdir>/checkpoints/<step>` of a PSNR or GAN run — placed like `like`; or
  `basicsr:<file>`, foreign weights (`.pth` / `.safetensors`, any layout `jaxsr.interop`
  reads) of model `model_name` at `scale`; or `model:<id>`, the cached workdir of an
  OpenModelDB model (`jaxsr.hub`; `registries`: `config.model_registry`).

  Raises:
    ValueError: starting 'init_from=<init_from>: ', when nothing there fits `like`."""
  if init_from.startswith(hub_cache.PREFIX):
    try:
      init_from = hub_cache.model_workdir(
          init_from[len(hub_cache.PREFIX):], hub_registry.split_specs(registries),
          local_hint="--config.init_from=basicsr:<file>")
    except ValueError as e:
      raise ValueError(f"init_from={init_from}: {e}") from None
  return _load_variables(
      "init_from", init_from, like, "generator",
      lambda path: interop_load.load_variables(path, model_name, like=like,
                                               scale=scale).variables,
      lambda manager, step, sharding: checkpointing.restore_generator(
          manager, step, like, use_ema=True, sharding=sharding))


def load_init_d_variables(init_d_from: str, like: Dict[str, Any],
                          discriminator_name: str) -> Dict[str, Any]:
  """The discriminator variables (`d_params` and `d_model_state`: BatchNorm statistics,
  spectral-norm u and v) of `init_d_from` — a GAN workdir or checkpoint directory, as for
  `load_init_variables`, or the workdir `jaxsr.convert` writes for a discriminator — placed like
  `like`; or `basicsr:<netD.pth>`, BasicSR weights of `discriminator_name` (e.g. 'unet_sn' reads
  Real-ESRGAN's `RealESRGAN_x4plus_netD.pth`).

  Raises:
    ValueError: starting 'init_d_from=<init_d_from>: ', when nothing there fits `like`."""
  return _load_variables(
      "init_d_from", init_d_from, like, "discriminator",
      lambda path: interop_load.load_variables(
          path, interop_load.discriminator_arch(discriminator_name), like=like).variables,
      lambda manager, step, sharding: checkpointing.restore_discriminator(
          manager, step, like, sharding=sharding))


def _load_variables(option: str, source: str, like: Dict[str, Any], what: str,
                    load_basicsr, restore) -> Dict[str, Any]:
  """`load_basicsr(path)` for `basicsr:<path>`, else `restore(manager, step, sharding)` of the
  checkpoint `source` names; placed like `like`. Errors (a missing or unreadable file, another
  architecture or size) become one ValueError naming `option` and `source`."""
  sharding = jax.tree.leaves(like)[0].sharding
  try:
    if source.startswith(interop_load.BASICSR_PREFIX):
      path = source[len(interop_load.BASICSR_PREFIX):]
      variables = jax.device_put(load_basicsr(path), sharding)
      logging.info("Initialised the %s from BasicSR weights %s", what, path)
      return variables
    workdir, which = checkpointing.split_checkpoint_path(source)
    if not epath.Path(checkpointing.checkpoint_dir(workdir)).is_dir():
      raise ValueError(f"no checkpoints in {workdir}")
    manager = checkpointing.create_manager(workdir, read_only=True)
    step = checkpointing.resolve_step(manager, which)
    variables = restore(manager, step, sharding)
    logging.info("Initialised the %s from %s step %d", what, workdir, step)
    return variables
  except (ValueError, KeyError, OSError, pickle.UnpicklingError) as e:
    message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    raise ValueError(f"{option}={source}: {message}") from None


def restore_or_init(config: ml_collections.ConfigDict, manager, comps: builders.Components,
                    mesh) -> Tuple[Any, int]:
  """Resumes from the latest checkpoint (no fresh init needed), else loads `config.init_from`
  generator variables (and for a GAN `config.init_d_from` discriminator variables) into a
  fresh state, else returns the fresh state."""
  restored = checkpointing.restore_latest(manager, builders.abstract_state(config, comps, mesh))
  if restored is not None:
    state, data_state, step = restored
    logging.info("Resumed from step %d (input position %s)", step, data_state)
    return state, int(data_state["next_step"])
  state = builders.build_state(config, comps, mesh)
  if config.init_from:
    variables = load_init_variables(
        config.init_from, state_lib.generator_variables(state, use_ema=False),
        config.model.name, config.scale, config.get("model_registry", ""))
    params, model_state = state_lib.split_variables(variables)
    # Separate buffers: the train step donates both trees.
    state = state.replace(params=params, ema_params=jax.tree.map(jnp.copy, params),
                          model_state=model_state)
  if config_base.is_gan(config) and config.init_d_from:
    variables = load_init_d_variables(
        config.init_d_from, {"params": state.d_params, **state.d_model_state},
        config.discriminator.name)
    d_params, d_model_state = state_lib.split_variables(variables)
    state = state.replace(d_params=d_params, d_model_state=d_model_state)
  return state, 0


def create_metric_writer(workdir: str, is_chief: bool) -> metric_writers.MetricWriter:
  """TensorBoard event files in `workdir` on the chief, nothing elsewhere. No logging writer:
  the console line is train.py's (`_format_progress`) and `evaluate.validate`'s, once each."""
  if not is_chief:
    return metric_writers.MultiWriter([])
  return metric_writers.AsyncMultiWriter([metric_writers.SummaryWriter(workdir)])


def _save_on_interrupt(manager, state, pending, flushed_to) -> str:
  """On Ctrl-C, keeps what was trained: saves the last finite state and waits for every write.
  Returns what was saved, for the one line that ends the run."""
  latest = manager.latest_step()
  kept = (f"the newest checkpoint, step {latest}, is kept" if latest is not None else
          "no checkpoint was saved")
  try:
    done = int(jax.device_get(state.step))
    check_finite(jax.device_get(pending), flushed_to)
  except (RuntimeError, NonFiniteError) as e:  # Donated mid-step, or not finite.
    return f"the state reached was not saved ({cli.first_line(e)}); {kept}"
  if done > (latest or 0):
    checkpointing.save(manager, done, state, input_pipeline.input_state(done))
  checkpointing.wait_until_saved(manager)
  if done == 0:
    return "nothing was trained yet"
  return f"the checkpoint of step {done} is saved in {manager.directory}"


def _close_quietly(manager) -> None:
  """On the way out with an error: lets background saves of earlier (good) states finish."""
  try:
    manager.close()
  except Exception as e:  # pylint: disable=broad-except; the error in flight matters more.
    logging.error("While stopping, a background checkpoint write failed too: %s", e)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains `config.model` (with `config.discriminator` for a GAN config) on `config.data.train`,
  validating and checkpointing in `workdir`. Returns the final TrainState / GanState."""
  # --- Config and devices.
  config_base.validate(config, jax.device_count())
  comps = builders.components_from_config(config)
  if not builders.has_params(comps.model, config):
    raise ValueError(f"Model '{config.model.name}' has no parameters to train; "
                     "use --mode=eval to evaluate it.")
  mesh = sharding.create_mesh()
  is_chief = jax.process_index() == 0
  epath.Path(workdir).mkdir(parents=True, exist_ok=True)  # Local or gs://.
  writer = create_metric_writer(workdir, is_chief)
  if is_chief:
    (epath.Path(workdir) / "config.json").write_text(config.to_json_best_effort(indent=2))

  # --- Data first: a missing or empty training or validation source fails here, before the
  # state is built and anything compiles.
  train_source = input_pipeline.load_train_source(config)
  val_sets = evaluate.load_eval_sets(config.eval.datasets, config.scale, config.data.data_dir)

  # --- Losses (VGG weights load here: missing ones fail before anything compiles) and step:
  # batch split over `data`, state replicated and donated.
  train_step, loss_variables = builders.jit_train_step(config, comps, mesh)
  sr_fn = evaluate.make_sr_fn(builders.make_apply_fn(comps.model))

  # --- State: resume where a checkpoint exists; input pipeline at the restored position.
  checkpointing.quiet_orbax_tracebacks()
  manager = checkpointing.create_manager(workdir, keep=config.keep_checkpoints)
  state, start_step = restore_or_init(config, manager, comps, mesh)
  if is_chief:
    preemption.clear_marker(workdir)  # This run goes on from where a preempted one stopped.
  train_iter = input_pipeline.create_train_dataset(
      config, train_source, start_step=start_step, process_index=jax.process_index(),
      process_count=jax.process_count()).as_numpy_iterator()

  # --- Loop.
  logging.info("Training %s%s x%d from step %d to %d", config.model.name,
               f" + {config.discriminator.name} GAN" if comps.discriminator else "",
               config.scale, start_step, config.num_train_steps)
  progress = Progress(start_step, config.num_train_steps)
  pending: List[Dict[str, Any]] = []  # Device metrics since the last flush.
  flushed_to = start_step

  def flush(step: int) -> Dict[str, float]:
    nonlocal pending, flushed_to
    host = jax.device_get(pending)
    check_finite(host, flushed_to)
    means = {k: float(np.mean([m[k] for m in host])) for k in host[0]} if host else {}
    pending, flushed_to = [], step
    return means

  step = start_step
  with preemption.StopSignal() as stop:
    try:
      for step in range(start_step + 1, config.num_train_steps + 1):
        batch = sharding.to_global(next(train_iter), mesh)
        state, step_metrics = train_step(state, batch, loss_variables)
        pending.append(step_metrics)
        is_last = step == config.num_train_steps

        if step % config.log_every_steps == 0 or is_last:
          means = flush(step)
          speed = progress.update(step)
          writer.write_scalars(step, {**{f"train/{k}": v for k, v in means.items()}, **speed})
          logging.info(_format_progress(step, config.num_train_steps, means, speed))

        val_metrics: Optional[Dict[str, float]] = None
        if val_sets and (step % config.eval_every_steps == 0 or is_last):
          flush(step)
          variables = state_lib.generator_variables(
              state, use_ema=bool(config.ema_decay and config.eval.use_ema))
          val_metrics = evaluate.validate(sr_fn, variables, val_sets, config.scale, step, writer,
                                          workdir, config.eval.num_samples, is_chief)

        stopping = stop.reached(step)
        if step % config.checkpoint_every_steps == 0 or is_last or stopping:
          flush(step)
          checkpointing.save(manager, step, state, input_pipeline.input_state(step), val_metrics,
                             wait=False)
        writer.flush()
        if stopping:
          break
    except KeyboardInterrupt as interrupt:
      try:
        saved = _save_on_interrupt(manager, state, pending, flushed_to)
      finally:
        _close_quietly(manager)
      raise Interrupted(
          f"interrupted ({str(interrupt) or 'Ctrl-C'}); {saved}") from None
    except BaseException:
      _close_quietly(manager)
      raise
    finally:
      writer.close()
    stop.finishing()  # Signals from here on only log: the last checkpoint is being written.
    checkpointing.wait_until_saved(manager)
    manager.close()
  if stop.ctrl_c and step < config.num_train_steps:
    raise Interrupted(f"interrupted (Ctrl-C); the checkpoint of step {step} is saved in "
                      f"{manager.directory}")
  if step < config.num_train_steps:
    if is_chief:
      preemption.write_marker(workdir, step, config.num_train_steps)
    logging.warning("Stopped at step %d of %d on a preemption notice (SIGTERM); the checkpoint "
                    "of step %d is saved. Re-run the same command to resume.", step,
                    config.num_train_steps, step)
  return state
