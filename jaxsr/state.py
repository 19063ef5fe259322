"""Train-state pytrees and the optimizer built from the config."""

from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

PyTree = Any


@flax.struct.dataclass
class TrainState:
  """Everything a PSNR-oriented run needs to resume exactly.

  Attributes:
    step: int32 scalar, number of optimizer updates done.
    params: generator parameters (float32).
    ema_params: exponential moving average of `params` (equal to params when EMA is off).
    opt_state: optax state of the generator optimizer.
    rng: PRNG key, split each step (for stochastic models and losses).
  """
  step: jnp.ndarray
  params: PyTree
  ema_params: PyTree
  opt_state: PyTree
  rng: jnp.ndarray


def learning_rate_schedule(optim: ml_collections.ConfigDict,
                           num_train_steps: int) -> optax.Schedule:
  """lr(step) for `optim.schedule` in constant | multistep | cosine, with linear warm-up."""
  peak = optim.learning_rate
  warmup = int(optim.warmup_steps)
  if optim.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else peak, peak_value=peak, warmup_steps=warmup,
        decay_steps=max(num_train_steps, warmup + 1), end_value=peak * optim.min_lr_ratio)
  if optim.schedule == "multistep":
    main = optax.piecewise_constant_schedule(
        peak, {int(m) - warmup: optim.gamma for m in optim.milestones if int(m) > warmup})
  else:
    main = optax.constant_schedule(peak)
  if not warmup:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), main], [warmup])


def create_optimizer(optim: ml_collections.ConfigDict,
                     schedule: optax.Schedule) -> optax.GradientTransformation:
  """Adam (AdamW when weight_decay > 0), optionally after global-norm gradient clipping."""
  if optim.weight_decay:
    adam = optax.adamw(schedule, b1=optim.b1, b2=optim.b2, weight_decay=optim.weight_decay)
  else:
    adam = optax.adam(schedule, b1=optim.b1, b2=optim.b2)
  if optim.grad_clip_norm:
    return optax.chain(optax.clip_by_global_norm(optim.grad_clip_norm), adam)
  return adam


def create_train_state(init_fn: Callable[[jax.Array], PyTree], tx: optax.GradientTransformation,
                       rng: jax.Array) -> TrainState:
  """Initialises params with `init_fn(key) -> params`, the optimizer state and the EMA copy."""
  init_rng, state_rng = jax.random.split(rng)
  params = init_fn(init_rng)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    ema_params=jax.tree.map(jnp.copy, params), opt_state=tx.init(params),
                    rng=state_rng)


def update_ema(ema_params: PyTree, params: PyTree, decay: float) -> PyTree:
  """ema <- decay * ema + (1 - decay) * params; decay 0 copies params."""
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)
