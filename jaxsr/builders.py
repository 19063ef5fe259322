"""Config -> models, apply functions, optimizers, losses, (abstract) train state and train step.

Everything the trainer, the evaluator and the benchmarks build from a config is built here, once,
outside jit; the returned functions read no config.
"""

import functools
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxsr import config_base
from jaxsr import losses
from jaxsr import models
from jaxsr import sharding
from jaxsr import state as state_lib
from jaxsr import steps
from jaxsr.degradations import pairs


def model_from_config(config: ml_collections.ConfigDict) -> nn.Module:
  """The generator named by `config.model.name`, with the other `config.model` fields."""
  kwargs = {k: v for k, v in config.model.items() if k != "name"}
  return models.create_model(config.model.name, config.scale,
                             dtype=jnp.dtype(config.dtype), **kwargs)


def discriminator_from_config(config: ml_collections.ConfigDict) -> nn.Module:
  """The discriminator named by `config.discriminator.name`; a discriminator with a fixed
  `input_size` gets the HR patch size `data.gt_size` unless the config sets it."""
  kwargs = {k: v for k, v in config.discriminator.items() if k != "name"}
  if "input_size" in models.discriminator_options(config.discriminator.name):
    kwargs.setdefault("input_size", config.data.gt_size)
  return models.create_discriminator(config.discriminator.name,
                                     dtype=jnp.dtype(config.dtype), **kwargs)


def make_apply_fn(model: nn.Module) -> Callable:
  """Inference: `(variables, lr [B, h, w, 3] in [0, 1]) -> sr [B, h*s, w*s, 3]` float32
  (not clipped); BatchNorm uses its running statistics."""
  return lambda variables, x: model.apply(variables, x)


def make_train_apply_fn(module: nn.Module) -> Callable:
  """Training mode: `(params, model_state, x, rng=None) -> (y, new_model_state)`. Collections in
  `model_state` (BatchNorm statistics, spectral-norm vectors) are updated; {} stays {}. `rng`
  is the 'dropout' key (SwinIR's stochastic depth); models without randomness ignore it."""

  def apply(params, model_state, x, rng=None):
    variables = {"params": params, **model_state}
    rngs = {} if rng is None else {"dropout": rng}
    if not model_state:
      return module.apply(variables, x, train=True, rngs=rngs), model_state
    return module.apply(variables, x, train=True, mutable=list(model_state), rngs=rngs)

  return apply


def _lr_shape(config: ml_collections.ConfigDict) -> Tuple[int, int, int, int]:
  lr_size = max(config.data.gt_size // config.scale, 1)
  return (1, lr_size, lr_size, 3)


def init_variables_fn(model: nn.Module, config: ml_collections.ConfigDict) -> Callable:
  """`key -> variables` of the generator, initialised on a dummy LR patch."""
  dummy = jnp.zeros(_lr_shape(config), jnp.float32)
  return lambda key: dict(model.init(key, dummy))


def init_discriminator_fn(discriminator: nn.Module,
                          config: ml_collections.ConfigDict) -> Callable:
  """`key -> variables` of the discriminator, initialised on a dummy HR patch."""
  side = config.data.gt_size
  dummy = jnp.zeros((1, side, side, 3), jnp.float32)
  return lambda key: dict(discriminator.init(key, dummy, train=False))


def has_params(model: nn.Module, config: ml_collections.ConfigDict) -> bool:
  """False for parameter-free models such as `bicubic` (checked without allocating)."""
  variables = jax.eval_shape(init_variables_fn(model, config), jax.random.key(0))
  return bool(jax.tree.leaves(variables.get("params", {})))


def optimizer_from_config(config: ml_collections.ConfigDict, name: str = "optim"
                          ) -> Tuple[optax.GradientTransformation, optax.Schedule]:
  """(optimizer, learning-rate schedule) from `config.<name>` (optim | optim_d)."""
  schedule = state_lib.learning_rate_schedule(config[name], config.num_train_steps)
  return state_lib.create_optimizer(config[name], schedule), schedule


def content_loss_from_config(config: ml_collections.ConfigDict) -> Tuple[Callable, Dict]:
  """The content loss of `config` and the frozen variables it needs.

  Loads the VGG19 weights here, so missing weights fail before anything compiles. They are
  returned apart, to be passed into the jitted step as an argument: closed over, they would be
  compiled into the program as ~80 MB of constants (slower compiles, bloated compile caches).

  Returns:
    (`content_loss(sr, batch, loss_variables) -> {term: weighted float32 scalar}` with the
    terms of nonzero weight among loss_pixel, loss_percep, loss_style (`[B, H, W, 3]` in
    [0, 1]); the pixel term compares with batch['hr_pixel'] and the feature terms with
    batch['hr_percep'] when present (real-world USM targets), else with batch['hr'];
    `loss_variables`: {'vgg': VGG19 variables} or {}).
  """
  loss_cfg = config.loss
  pixel = losses.pixel_loss(loss_cfg.pixel)
  features_apply, loss_variables = None, {}
  if loss_cfg.perceptual_weight or loss_cfg.style_weight:
    layer_weights = config_base.parse_layer_weights(loss_cfg.perceptual_layers)
    # Imported here: only feature losses need the VGG module (and h5py).
    from jaxsr.models import vgg  # pylint: disable=g-import-not-at-top
    features_apply, loss_variables["vgg"] = vgg.make_vgg_feature_apply(
        loss_cfg.vgg_weights, tuple(layer_weights), use_input_norm=loss_cfg.vgg_input_norm)

  def content_loss(sr, batch, loss_variables) -> Dict[str, jnp.ndarray]:
    terms = {}
    if loss_cfg.pixel_weight:
      terms["loss_pixel"] = loss_cfg.pixel_weight * pixel(sr, batch.get("hr_pixel", batch["hr"]))
    if features_apply is not None:
      features_fn = functools.partial(features_apply, loss_variables["vgg"])
      percep, style = losses.perceptual_losses(features_fn, sr,
                                               batch.get("hr_percep", batch["hr"]),
                                               layer_weights, loss_cfg.perceptual_criterion)
      if loss_cfg.perceptual_weight:
        terms["loss_percep"] = loss_cfg.perceptual_weight * percep
      if loss_cfg.style_weight:
        terms["loss_style"] = loss_cfg.style_weight * style
    return terms

  return content_loss, loss_variables


class Components(NamedTuple):
  """What a run is made of: the generator and its optimizer, and for a GAN the discriminator
  and its optimizer (None otherwise)."""
  model: nn.Module
  tx: optax.GradientTransformation
  schedule: optax.Schedule
  discriminator: Optional[nn.Module] = None
  d_tx: Optional[optax.GradientTransformation] = None
  d_schedule: Optional[optax.Schedule] = None


def components_from_config(config: ml_collections.ConfigDict) -> Components:
  """Models and optimizers of `config` (a GAN's when `config_base.is_gan(config)`)."""
  tx, schedule = optimizer_from_config(config)
  comps = Components(model_from_config(config), tx, schedule)
  if config_base.is_gan(config):
    d_tx, d_schedule = optimizer_from_config(config, "optim_d")
    comps = comps._replace(discriminator=discriminator_from_config(config), d_tx=d_tx,
                           d_schedule=d_schedule)
  return comps


def state_init_fn(config: ml_collections.ConfigDict, comps: Components) -> Callable:
  """`key -> TrainState | GanState` (with a real-world run's empty training-pair pool)."""
  g_init = init_variables_fn(comps.model, config)
  pool_fn = lambda: {}
  if config_base.is_realworld(config):
    pool_fn = functools.partial(pairs.init_pool, config.degradation.queue_size,
                                config.data.gt_size, config.scale)
  if comps.discriminator is None:
    return lambda key: state_lib.create_train_state(g_init, comps.tx, key, pool_fn())
  d_init = init_discriminator_fn(comps.discriminator, config)
  return lambda key: state_lib.create_gan_state(g_init, d_init, comps.tx, comps.d_tx, key,
                                                pool_fn())


def build_state(config: ml_collections.ConfigDict, comps: Components, mesh: jax.sharding.Mesh):
  """A fresh train state from `config.seed`, replicated over the mesh."""
  return jax.jit(state_init_fn(config, comps),
                 out_shardings=sharding.replicated(mesh))(jax.random.key(config.seed))


def abstract_state(config: ml_collections.ConfigDict, comps: Components,
                   mesh: jax.sharding.Mesh):
  """ShapeDtypeStructs (replicated shardings) of the train state: a restore target, no memory."""
  shapes = jax.eval_shape(state_init_fn(config, comps), jax.random.key(0))
  rep = sharding.replicated(mesh)
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep), shapes)


def jit_train_step(config: ml_collections.ConfigDict, comps: Components,
                   mesh: jax.sharding.Mesh) -> Tuple[Callable, Dict]:
  """(`train_step(state, batch, loss_variables)` jit-compiled with the batch split over `data`,
  state and loss variables replicated and the state donated; `loss_variables` placed).

  A real-world config's step takes the host's HR crops ({'hr': uint8 [B, P, P, 3]}) and first
  makes its training pairs (`degradations.pairs`) in a jitted stage of its own, then runs the
  PSNR / GAN step on them: the degradations compile once per degradation config, whatever the
  model (and are shared through the compilation cache)."""
  step_fn, loss_variables = train_step_from_config(config, comps)
  rep, split = sharding.replicated(mesh), sharding.batch_sharding(mesh)
  step = jax.jit(step_fn, in_shardings=(rep, split, rep), out_shardings=(rep, rep),
                 donate_argnums=(0,))
  loss_variables = jax.device_put(loss_variables, rep)
  if not config_base.is_realworld(config):
    return step, loss_variables
  make_pairs = jax.jit(pairs.make_pair_fn(config), in_shardings=(rep, split, rep),
                       out_shardings=(rep, split), donate_argnums=(0,))

  def realworld_step(state, batch, loss_variables):
    pool, pair_batch = make_pairs(state.pool, batch["hr"], state.step)
    return step(state.replace(pool=pool), pair_batch, loss_variables)

  return realworld_step, loss_variables


def train_step_from_config(config: ml_collections.ConfigDict,
                           comps: Components) -> Tuple[Callable, Dict]:
  """(`train_step(state, batch, loss_variables) -> (state, metrics)` on (LR, HR) batches, not
  yet jitted, and the `loss_variables` to call it with; see `content_loss_from_config`)."""
  content_loss, loss_variables = content_loss_from_config(config)
  g_apply = make_train_apply_fn(comps.model)
  if comps.discriminator is None:
    return steps.make_psnr_train_step(g_apply, comps.tx, content_loss, config.ema_decay,
                                      comps.schedule), loss_variables
  return steps.make_gan_train_step(
      g_apply, make_train_apply_fn(comps.discriminator), comps.tx, comps.d_tx, content_loss,
      steps.GanOptions(gan_type=config.loss.gan_type, gan_weight=config.loss.gan_weight,
                       real_label=config.loss.real_label,
                       d_steps_per_g_step=config.gan.d_steps_per_g_step,
                       d_first=config.gan.d_first, d_warmup_steps=config.gan.d_warmup_steps),
      config.ema_decay, comps.schedule, comps.d_schedule), loss_variables
