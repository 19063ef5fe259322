"""Pixel losses against hand-computed values; learning-rate schedules; EMA. float32 results
within `utils.approx` / `utils.assert_close` of their few rounding steps."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import config_base
from jaxsr import losses
from jaxsr import state as state_lib

from tests import utils

pytestmark = pytest.mark.numerics


def test_pixel_losses_hand_computed():
  pred = jnp.array([[0.0, 0.5], [1.0, 0.25]])
  target = jnp.array([[0.5, 0.5], [0.0, 0.75]])
  # |d| = .5, 0, 1, .5
  # Means of 4 (exact here but for the Charbonnier square roots): 4 + 2 steps.
  assert float(losses.l1_loss(pred, target)) == utils.approx(2.0 / 4, ops=6)
  assert float(losses.l2_loss(pred, target)) == utils.approx((0.25 + 0 + 1 + 0.25) / 4, ops=6)
  expected = np.mean(np.sqrt(np.array([0.25, 0.0, 1.0, 0.25]) + 1e-3))
  assert float(losses.charbonnier_loss(pred, target, eps=1e-3)) == utils.approx(expected, ops=6)
  assert losses.pixel_loss("charbonnier") is losses.charbonnier_loss
  with pytest.raises(ValueError, match="Unknown pixel loss 'l3'"):
    losses.pixel_loss("l3")


def test_multistep_schedule_with_warmup():
  optim = config_base.base_config().optim
  optim.learning_rate, optim.milestones, optim.gamma, optim.warmup_steps = 1.0, (10, 20), 0.5, 4
  lr = state_lib.learning_rate_schedule(optim, 30)
  # float32 warmup ramp and products by gamma: a few roundings.
  assert float(lr(0)) == 0.0 and float(lr(2)) == utils.approx(0.5, ops=4)
  assert float(lr(9)) == utils.approx(1.0, ops=4)
  assert float(lr(10)) == utils.approx(0.5, ops=4)
  assert float(lr(25)) == utils.approx(0.25, ops=4)


def test_cosine_schedule_ends_at_min_ratio():
  optim = config_base.base_config().optim
  optim.schedule, optim.learning_rate, optim.min_lr_ratio, optim.warmup_steps = "cosine", 2.0, 0.1, 0
  lr = state_lib.learning_rate_schedule(optim, 100)
  # float32 cosine (pi / 2 rounded: cos is -4e-8, not 0) and a few products: on the scale of 2.
  assert float(lr(0)) == utils.approx(2.0, ops=8)
  assert float(lr(50)) == utils.approx(0.2 + 1.8 * 0.5, ops=8, magnitude=2.0)
  assert float(lr(100)) == utils.approx(0.2, ops=8, magnitude=2.0)


def _two_updates(tx, grads_seq):
  params = {"w": jnp.zeros(3)}
  opt_state, updates = tx.init(params), None
  for grads in grads_seq:
    updates, opt_state = tx.update({"w": grads}, opt_state, params)
  return np.asarray(updates["w"])


def test_gradient_clipping_equals_adam_on_clipped_gradients():
  optim = config_base.base_config().optim
  optim.schedule = "constant"
  schedule = state_lib.learning_rate_schedule(optim, 10)
  plain = state_lib.create_optimizer(optim, schedule)
  optim.grad_clip_norm = 1.0
  clipped = state_lib.create_optimizer(optim, schedule)
  big, small = jnp.array([300.0, 400.0, 0.0]), jnp.array([0.0, 0.3, 0.4])  # norms 500, 0.5
  got = _two_updates(clipped, [big, small])
  # The clip's norm and scaling, then Adam's elementwise moments, sqrt and division: ~12 steps.
  utils.assert_close(got, _two_updates(plain, [big / 500.0, small]), ops=12)
  assert not np.allclose(got, _two_updates(plain, [big, small]), rtol=1e-3)


def test_ema_update():
  ema = state_lib.update_ema({"a": jnp.array(1.0)}, {"a": jnp.array(3.0)}, 0.75)
  assert float(ema["a"]) == utils.approx(0.75 * 1 + 0.25 * 3, ops=3)
  assert float(state_lib.update_ema({"a": jnp.array(1.0)}, {"a": jnp.array(3.0)}, 0.0)["a"]) == 3.0
