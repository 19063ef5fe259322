"""Pure step functions; jit-compiled and sharded by the trainer.

No config lookups happen inside jit: `make_psnr_train_step` reads what it needs once and returns a
closure `(state, batch) -> (state, metrics)`.
"""

from typing import Callable, Dict

import jax
import jax.numpy as jnp
import optax

from jaxsr import metrics as metrics_lib
from jaxsr import state as state_lib

Batch = Dict[str, jnp.ndarray]  # {'lr': [B, h, w, 3], 'hr': [B, h*s, w*s, 3]} in [0, 1].


def make_psnr_train_step(apply_fn: Callable, tx: optax.GradientTransformation,
                         pixel_loss: Callable, pixel_weight: float, ema_decay: float,
                         schedule: optax.Schedule) -> Callable:
  """A train step for PSNR-oriented training with a weighted pixel loss.

  Args:
    apply_fn: `(params, lr [B, h, w, 3]) -> sr [B, h*s, w*s, 3]` float32.
    tx: the optimizer.
    pixel_loss: `(sr, hr) -> scalar`.
    pixel_weight: weight of the pixel loss.
    ema_decay: EMA decay of the parameters (0: EMA equals params).
    schedule: learning-rate schedule, evaluated for logging.

  Returns:
    `train_step(state, batch) -> (state, metrics)`; metrics are float32 scalars:
    `loss`, `loss_pixel`, `psnr` (RGB, of the batch), `learning_rate`, `grad_norm`.
  """

  def loss_fn(params, batch):
    sr = apply_fn(params, batch["lr"])
    loss_pixel = pixel_weight * pixel_loss(sr, batch["hr"])
    return loss_pixel, (sr, {"loss_pixel": loss_pixel})

  def train_step(state: state_lib.TrainState, batch: Batch):
    (loss, (sr, terms)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    rng, _ = jax.random.split(state.rng)
    new_state = state.replace(
        step=state.step + 1, params=params, opt_state=opt_state, rng=rng,
        ema_params=state_lib.update_ema(state.ema_params, params, ema_decay))
    step_metrics = dict(terms)
    step_metrics.update(
        loss=loss,
        psnr=metrics_lib.batch_psnr(jnp.clip(sr, 0.0, 1.0), batch["hr"]),
        learning_rate=jnp.asarray(schedule(state.step), jnp.float32),
        grad_norm=optax.tree.norm(grads))
    return new_state, step_metrics

  return train_step
