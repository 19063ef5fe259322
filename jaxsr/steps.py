"""Pure train-step functions; jit-compiled and sharded by the trainer.

No config lookups happen inside jit: `make_psnr_train_step` and `make_gan_train_step` take what
they need as arguments and return a closure `(state, batch, loss_variables) -> (state, metrics)`;
`loss_variables` are frozen arrays the losses use (VGG19 weights, or {}).
"""

from typing import Callable, Dict, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxsr import losses
from jaxsr import metrics as metrics_lib
from jaxsr import state as state_lib

# {'lr': [B, h, w, 3], 'hr': [B, h*s, w*s, 3]} in [0, 1]; real-world batches may add other
# targets of the losses: 'hr_pixel', 'hr_percep' (see `content_loss`), 'hr_gan' (D's real).
Batch = Dict[str, jnp.ndarray]
# `(params, model_state, x, rng) -> (y, new_model_state)`, training mode (see builders); rng
# drives the model's own randomness (stochastic depth).
TrainApplyFn = Callable
# `(sr, batch, loss_variables) -> {term name: weighted scalar}`: pixel / perceptual / style terms.
ContentLossFn = Callable[..., Dict[str, jnp.ndarray]]


def _total(terms: Dict[str, jnp.ndarray]) -> jnp.ndarray:
  return sum(terms.values(), jnp.zeros((), jnp.float32))


def gan_target(batch: Batch) -> jnp.ndarray:
  """The discriminator's real images: 'hr_gan' if the batch has it, else 'hr'."""
  return batch.get("hr_gan", batch["hr"])


def _batch_psnr(sr: jnp.ndarray, hr: jnp.ndarray) -> jnp.ndarray:
  return metrics_lib.batch_psnr(jnp.clip(sr, 0.0, 1.0), hr)


def make_psnr_train_step(g_apply: TrainApplyFn, tx: optax.GradientTransformation,
                         content_loss: ContentLossFn, ema_decay: float,
                         schedule: optax.Schedule) -> Callable:
  """A train step for PSNR-oriented training (pixel and optional feature losses).

  Args:
    g_apply: generator, training mode: `(params, model_state, lr) -> (sr, model_state)`.
    tx: the optimizer.
    content_loss: `(sr, batch, loss_variables) -> {term: weighted scalar}`; the loss is their
      sum.
    ema_decay: EMA decay of the parameters (0: EMA equals params).
    schedule: learning-rate schedule, evaluated for logging.

  Returns:
    `train_step(state, batch, loss_variables) -> (state, metrics)`; metrics are float32
    scalars: `loss`, each
    term, `psnr` (RGB, of the batch), `learning_rate`, `grad_norm`.
  """

  def loss_fn(params, model_state, batch, loss_variables, rng):
    sr, model_state = g_apply(params, model_state, batch["lr"], rng)
    terms = content_loss(sr, batch, loss_variables)
    return _total(terms), (sr, model_state, terms)

  def train_step(state: state_lib.TrainState, batch: Batch, loss_variables):
    rng, step_rng = jax.random.split(state.rng)
    (loss, (sr, model_state, terms)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, state.model_state, batch, loss_variables, step_rng)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(
        step=state.step + 1, params=params, opt_state=opt_state, rng=rng, model_state=model_state,
        ema_params=state_lib.update_ema(state.ema_params, params, ema_decay))
    step_metrics = dict(terms, loss=loss, psnr=_batch_psnr(sr, batch["hr"]),
                        learning_rate=jnp.asarray(schedule(state.step), jnp.float32),
                        grad_norm=optax.tree.norm(grads))
    return new_state, step_metrics

  return train_step


class GanOptions(NamedTuple):
  """How a GAN step combines its parts.

  Attributes:
    gan_type: vanilla | lsgan | hinge | ragan (see `losses.GAN_TYPES`).
    gan_weight: weight of the adversarial term in the generator loss.
    real_label: the discriminator's target for real images (< 1: label smoothing).
    d_steps_per_g_step: discriminator updates per step, all on this step's batch.
    d_first: update D before G (then G is judged by the updated D).
    d_warmup_steps: steps before this one update only D (BasicSR `net_d_init_iters`).
  """
  gan_type: str = "vanilla"
  gan_weight: float = 1e-3
  real_label: float = 1.0
  d_steps_per_g_step: int = 1
  d_first: bool = False
  d_warmup_steps: int = 0


def make_gan_train_step(g_apply: TrainApplyFn, d_apply: TrainApplyFn,
                        g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation,
                        content_loss: ContentLossFn, options: GanOptions, ema_decay: float,
                        g_schedule: optax.Schedule, d_schedule: optax.Schedule) -> Callable:
  """One adversarial train step: G and D updates on one batch.

  The generator runs forward once (`jax.vjp`); its output feeds both the D update(s) (under
  stop_gradient, as BasicSR's `output.detach()`) and the G loss, whose gradient w.r.t. the
  output is pulled back through that forward. With `d_first` the D updates come first and
  judge this output before G's update; otherwise (BasicSR's order) G is updated first.
  Discriminator forwards run in training mode and thread its state (BatchNorm statistics,
  spectral-norm vectors) through every call, as PyTorch modules in train mode do.

  Args:
    g_apply: generator, training mode: `(params, model_state, lr) -> (sr, model_state)`.
    d_apply: discriminator, training mode: `(d_params, d_model_state, img) -> (logits, state)`.
    g_tx: generator optimizer.
    d_tx: discriminator optimizer.
    content_loss: `(sr, batch, loss_variables) -> {term: weighted scalar}` (pixel /
      perceptual / style).
    options: see `GanOptions`.
    ema_decay: EMA decay of the generator parameters.
    g_schedule: generator learning-rate schedule (for logging).
    d_schedule: discriminator learning-rate schedule (for logging).

  Returns:
    `train_step(state: GanState, batch, loss_variables) -> (state, metrics)`; metrics (float32
    scalars):
    `loss_g` and its terms (`loss_pixel`, `loss_percep`, `loss_style` when weighted,
    `loss_gan`), `loss_d_real`, `loss_d_fake`, `d_real`, `d_fake` (mean D logits on HR / SR),
    `psnr`, `learning_rate_g`, `learning_rate_d`, `grad_norm_g`, `grad_norm_d`.
  """
  gan_type = options.gan_type

  def d_loss_fn(d_params, d_model_state, hr, sr):
    real, d_model_state = d_apply(d_params, d_model_state, hr)
    fake, d_model_state = d_apply(d_params, d_model_state, sr)
    loss_real, loss_fake = losses.discriminator_adversarial_loss(
        gan_type, real, fake, real_label=options.real_label)
    aux = {"loss_d_real": loss_real, "loss_d_fake": loss_fake,
           "d_real": jnp.mean(real.astype(jnp.float32)),
           "d_fake": jnp.mean(fake.astype(jnp.float32))}
    return loss_real + loss_fake, (d_model_state, aux)

  def d_update(state: state_lib.GanState, hr, sr):
    sr = jax.lax.stop_gradient(sr)
    aux, grad_norm = {}, jnp.zeros((), jnp.float32)
    for _ in range(options.d_steps_per_g_step):
      (_, (d_model_state, aux)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
          state.d_params, state.d_model_state, hr, sr)
      updates, d_opt_state = d_tx.update(grads, state.d_opt_state, state.d_params)
      state = state.replace(d_params=optax.apply_updates(state.d_params, updates),
                            d_opt_state=d_opt_state, d_model_state=d_model_state)
      grad_norm = optax.tree.norm(grads)
    return state, dict(aux, grad_norm_d=grad_norm)

  def g_loss_fn(sr, state: state_lib.GanState, batch, loss_variables):
    hr = gan_target(batch)
    terms = content_loss(sr, batch, loss_variables)
    fake, d_model_state = d_apply(state.d_params, state.d_model_state, sr)
    real = None
    if gan_type == "ragan":
      real, d_model_state = d_apply(state.d_params, d_model_state, hr)
    terms["loss_gan"] = options.gan_weight * losses.generator_adversarial_loss(
        gan_type, fake, real)
    return _total(terms), (d_model_state, terms)

  def g_update(state: state_lib.GanState, sr, g_vjp, g_model_state, batch, loss_variables):
    (loss, (d_model_state, terms)), d_sr = jax.value_and_grad(g_loss_fn, has_aux=True)(
        sr, state, batch, loss_variables)
    (grads,) = g_vjp(d_sr)
    updates, opt_state = g_tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    g_new = dict(params=params, opt_state=opt_state, model_state=g_model_state,
                 ema_params=state_lib.update_ema(state.ema_params, params, ema_decay))
    if options.d_warmup_steps:  # During D warm-up G stays as it was.
      g_old = {name: getattr(state, name) for name in g_new}
      train_g = state.step >= options.d_warmup_steps
      g_new = jax.tree.map(lambda new, old: jnp.where(train_g, new, old), g_new, g_old)
    state = state.replace(**g_new, d_model_state=d_model_state)
    return state, dict(terms, loss_g=loss, grad_norm_g=optax.tree.norm(grads))

  def train_step(state: state_lib.GanState, batch: Batch, loss_variables):
    real = gan_target(batch)
    rng, step_rng = jax.random.split(state.rng)
    g_forward = lambda params: g_apply(params, state.model_state, batch["lr"], step_rng)
    sr, g_vjp, g_model_state = jax.vjp(g_forward, state.params, has_aux=True)
    if options.d_first:
      state, d_metrics = d_update(state, real, sr)
      state, g_metrics = g_update(state, sr, g_vjp, g_model_state, batch, loss_variables)
    else:
      state, g_metrics = g_update(state, sr, g_vjp, g_model_state, batch, loss_variables)
      state, d_metrics = d_update(state, real, sr)
    step = state.step
    state = state.replace(step=step + 1, rng=rng)
    step_metrics = dict(g_metrics, **d_metrics, psnr=_batch_psnr(sr, batch["hr"]),
                        learning_rate_g=jnp.asarray(g_schedule(step), jnp.float32),
                        learning_rate_d=jnp.asarray(d_schedule(step), jnp.float32))
    return state, step_metrics

  return train_step
