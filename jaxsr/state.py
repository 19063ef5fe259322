"""Train-state pytrees and the optimizers built from the config."""

from typing import Any, Callable, Dict, Tuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

PyTree = Any
Variables = Dict[str, PyTree]  # Linen variables: {'params': ..., 'batch_stats': ...}.


@flax.struct.dataclass
class TrainState:
  """Everything a PSNR-oriented run needs to resume exactly.

  Attributes:
    step: int32 scalar, number of optimizer updates done.
    params: generator parameters (float32).
    ema_params: exponential moving average of `params` (equal to params when EMA is off).
    model_state: the generator's other Linen collections (BatchNorm statistics:
      {'batch_stats': ...}); {} for models without any.
    opt_state: optax state of the generator optimizer.
    rng: PRNG key, split each step (for stochastic models and losses).
    pool: real-world runs: the training-pair pool (`degradations.pairs.init_pool`); else {}.
  """
  step: jnp.ndarray
  params: PyTree
  ema_params: PyTree
  model_state: PyTree
  opt_state: PyTree
  rng: jnp.ndarray
  pool: PyTree


@flax.struct.dataclass
class GanState(TrainState):
  """A GAN run: `TrainState`'s generator fields (same names, so evaluation, `init_from` and
  weight import read either kind of checkpoint) plus the discriminator's.

  Attributes:
    d_params: discriminator parameters.
    d_model_state: the discriminator's other collections (BatchNorm / spectral-norm state).
    d_opt_state: optax state of the discriminator optimizer.
  """
  d_params: PyTree
  d_model_state: PyTree
  d_opt_state: PyTree


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


def split_variables(variables: Variables) -> Tuple[PyTree, Variables]:
  """Linen variables -> (params, the other collections)."""
  rest = {k: v for k, v in variables.items() if k != "params"}
  return variables.get("params", {}), rest


def create_train_state(init_fn: Callable[[jax.Array], Variables],
                       tx: optax.GradientTransformation, rng: jax.Array,
                       pool: PyTree = None) -> TrainState:
  """Initialises variables with `init_fn(key)`, the optimizer state and the EMA copy; `pool`:
  a real-world run's empty training-pair pool (None: {})."""
  init_rng, state_rng = jax.random.split(rng)
  params, model_state = split_variables(init_fn(init_rng))
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    ema_params=jax.tree.map(jnp.copy, params), model_state=model_state,
                    opt_state=tx.init(params), rng=state_rng,
                    pool={} if pool is None else pool)


def create_gan_state(g_init_fn: Callable[[jax.Array], Variables],
                     d_init_fn: Callable[[jax.Array], Variables],
                     g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation,
                     rng: jax.Array, pool: PyTree = None) -> GanState:
  """A fresh GanState: generator (and pool) as in `create_train_state`, discriminator from
  `d_init_fn`."""
  g_rng, d_rng = jax.random.split(rng)
  g = create_train_state(g_init_fn, g_tx, g_rng, pool)
  d_params, d_model_state = split_variables(d_init_fn(d_rng))
  return GanState(step=g.step, params=g.params, ema_params=g.ema_params,
                  model_state=g.model_state, opt_state=g.opt_state, rng=g.rng, pool=g.pool,
                  d_params=d_params, d_model_state=d_model_state, d_opt_state=d_tx.init(d_params))


def update_ema(ema_params: PyTree, params: PyTree, decay: float) -> PyTree:
  """ema <- decay * ema + (1 - decay) * params; decay 0 copies params."""
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)


def generator_variables(state, use_ema: bool) -> Variables:
  """Linen variables of the generator of a TrainState or GanState, for inference: the EMA
  (or raw) params with the model state (running BatchNorm statistics)."""
  return {"params": state.ema_params if use_ema else state.params, **state.model_state}
