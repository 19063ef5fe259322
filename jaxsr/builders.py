"""Config -> model, apply function, optimizer and (abstract) train state; shared by train and eval."""

import functools
from typing import Callable, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxsr import models
from jaxsr import sharding
from jaxsr import state as state_lib


def model_from_config(config: ml_collections.ConfigDict):
  """The Linen module named by `config.model.name`, with the other `config.model` fields."""
  kwargs = {k: v for k, v in config.model.items() if k != "name"}
  return models.create_model(config.model.name, config.scale,
                             dtype=jnp.dtype(config.dtype), **kwargs)


def make_apply_fn(model) -> Callable:
  """`(params, lr [B, h, w, 3] in [0, 1]) -> sr [B, h*s, w*s, 3]` float32 (not clipped)."""
  return lambda params, x: model.apply({"params": params}, x)


def init_params_fn(model, config: ml_collections.ConfigDict) -> Callable:
  """`key -> params`, initialising on a dummy LR patch."""
  lr_size = max(config.data.gt_size // config.scale, 1)
  dummy = jnp.zeros((1, lr_size, lr_size, 3), jnp.float32)
  return lambda key: model.init(key, dummy).get("params", {})


def has_params(model, config: ml_collections.ConfigDict) -> bool:
  """False for parameter-free models such as `bicubic` (checked without allocating)."""
  return bool(jax.tree.leaves(jax.eval_shape(init_params_fn(model, config), jax.random.key(0))))


def optimizer_from_config(
    config: ml_collections.ConfigDict) -> Tuple[optax.GradientTransformation, optax.Schedule]:
  """(optimizer, learning-rate schedule) from `config.optim`."""
  schedule = state_lib.learning_rate_schedule(config.optim, config.num_train_steps)
  return state_lib.create_optimizer(config.optim, schedule), schedule


def _state_fn(config, model, tx) -> Callable:
  return functools.partial(state_lib.create_train_state, init_params_fn(model, config), tx)


def build_state(config: ml_collections.ConfigDict, model, tx,
                mesh: jax.sharding.Mesh) -> state_lib.TrainState:
  """A fresh TrainState from `config.seed`, replicated over the mesh."""
  return jax.jit(_state_fn(config, model, tx),
                 out_shardings=sharding.replicated(mesh))(jax.random.key(config.seed))


def abstract_state(config: ml_collections.ConfigDict, model, tx,
                   mesh: jax.sharding.Mesh) -> state_lib.TrainState:
  """ShapeDtypeStructs (replicated shardings) of the TrainState: a restore target, no memory."""
  shapes = jax.eval_shape(_state_fn(config, model, tx), jax.random.key(0))
  rep = sharding.replicated(mesh)
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep), shapes)
