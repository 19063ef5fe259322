"""Loss functions: pure functions of arrays, `[B, H, W, C]` images in [0, 1].

Each returns a float32 scalar (mean over all elements), as BasicSR's losses with reduction='mean'.
"""

from typing import Callable

import jax.numpy as jnp

CHARBONNIER_EPS = 1e-12  # BasicSR's CharbonnierLoss default.


def l1_loss(pred: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
  """Mean absolute error."""
  return jnp.mean(jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32)))


def l2_loss(pred: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
  """Mean squared error (BasicSR MSELoss)."""
  return jnp.mean(jnp.square(pred.astype(jnp.float32) - target.astype(jnp.float32)))


def charbonnier_loss(pred: jnp.ndarray, target: jnp.ndarray,
                     eps: float = CHARBONNIER_EPS) -> jnp.ndarray:
  """mean(sqrt((pred - target)^2 + eps)), a differentiable L1."""
  diff = pred.astype(jnp.float32) - target.astype(jnp.float32)
  return jnp.mean(jnp.sqrt(jnp.square(diff) + eps))


PIXEL_LOSSES: dict = {"l1": l1_loss, "l2": l2_loss, "charbonnier": charbonnier_loss}


def pixel_loss(name: str) -> Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]:
  """The pixel loss called `name` (l1 | l2 | charbonnier)."""
  if name not in PIXEL_LOSSES:
    raise ValueError(f"Unknown pixel loss '{name}'; choose one of {sorted(PIXEL_LOSSES)}")
  return PIXEL_LOSSES[name]
