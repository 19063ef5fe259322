"""`dtype=bfloat16` training: every generator (PSNR step) and GAN steps learn with float32 master
weights and optimizer state, and bfloat16 SR stays within a stated PSNR of float32 SR."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxsr import builders
from jaxsr import metrics
from jaxsr import sharding
from jaxsr.ops import imresize

from tests import utils
from tests.test_models import SMALL

GENERATORS = sorted(name for name in SMALL if name != "bicubic")
# PSNR (dB) of bfloat16 SR against float32 SR of the same weights, on 8-bit images; bfloat16 keeps
# 8 bits of mantissa, so outputs differ by about 2^-9 relative per op.
MIN_PSNR_VS_FLOAT32 = 50.0  # Measured: 57-64 dB for the tiny models here.
# SPAN (4 channels here) computes on values in [0, 255] (img_range) with merged 3x3 convs whose
# bf16 roundings are relatively larger: measured 48.6 dB.
MIN_PSNR_OVERRIDES = {"span": 45.0}


def _batch(scale=2, size=16, count=4):
  rng = np.random.default_rng(0)
  hr = np.stack([utils.smooth_image(rng, size, size) for _ in range(count)]) / 255.0
  lr = np.clip(imresize.imresize_np(hr.transpose(1, 2, 0, 3).reshape(size, size, -1), 1 / scale),
               0, 1).reshape(size // scale, size // scale, count, 3).transpose(2, 0, 1, 3)
  return {"lr": lr.astype(np.float32), "hr": hr.astype(np.float32)}


def _config(generator, dtype, gan=False, discriminator="seed"):
  make = utils.tiny_gan_config if gan else utils.tiny_config
  c = make("unused", generator=generator, discriminator=discriminator) if gan else make("unused")
  c.model = ml_collections.ConfigDict({"name": generator, **SMALL[generator]})
  c.dtype = dtype
  c.optim.learning_rate = 2e-3
  return c


def _train(config, batch, steps):
  """(first-step metrics, last-step metrics, final state) of `steps` steps on one batch."""
  mesh = sharding.create_mesh()
  comps = builders.components_from_config(config)
  state = builders.build_state(config, comps, mesh)
  step_fn, loss_variables = builders.jit_train_step(config, comps, mesh)
  batch = sharding.to_global(batch, mesh)
  history = []
  for _ in range(steps):
    state, step_metrics = step_fn(state, batch, loss_variables)
    history.append(jax.device_get(step_metrics))
  return history[0], history[-1], state, comps


def _assert_float32_master(state):
  for tree in (state.params, state.ema_params, state.opt_state):
    for leaf in jax.tree.leaves(tree):
      if jnp.issubdtype(leaf.dtype, jnp.floating):
        assert leaf.dtype == jnp.float32, leaf.dtype


def _sr_uint8(model, variables, lr):
  return metrics.to_uint8(np.clip(np.asarray(model.apply(variables, lr)), 0, 1))


@pytest.mark.parametrize("generator", GENERATORS)
def test_bfloat16_psnr_training_learns_with_float32_master_weights(generator):
  batch = _batch()
  first, last, state, comps = _train(_config(generator, "bfloat16"), batch, steps=8)
  assert all(np.isfinite(v).all() for v in last.values())
  assert last["loss"] < first["loss"], (first["loss"], last["loss"])
  _assert_float32_master(state)

  # The same (bfloat16-trained) weights computed in float32 and in bfloat16.
  variables = {"params": state.params, **state.model_state}
  float32_model = builders.model_from_config(_config(generator, "float32"))
  sr32 = _sr_uint8(float32_model, variables, batch["lr"])
  sr16 = _sr_uint8(comps.model, variables, batch["lr"])
  worst = min(metrics.psnr(a, b, crop_border=2) for a, b in zip(sr16, sr32))
  print(f"{generator}: bfloat16 vs float32 SR, worst Y-PSNR {worst:.1f} dB")
  assert worst >= MIN_PSNR_OVERRIDES.get(generator, MIN_PSNR_VS_FLOAT32)


@pytest.mark.parametrize("generator,discriminator", [("seed", "seed"), ("rrdbnet", "unet_sn")])
def test_bfloat16_gan_training_learns_with_float32_master_weights(generator, discriminator):
  batch = _batch()
  config = _config(generator, "bfloat16", gan=True, discriminator=discriminator)
  if discriminator != "seed":
    config.discriminator = ml_collections.ConfigDict({"name": discriminator, "num_feat": 4})
  first, last, state, _ = _train(config, batch, steps=8)
  assert all(np.isfinite(v).all() for v in last.values()), last
  assert last["loss_pixel"] < first["loss_pixel"], (first, last)
  _assert_float32_master(state)
  for tree in (state.d_params, state.d_opt_state):
    for leaf in jax.tree.leaves(tree):
      if jnp.issubdtype(leaf.dtype, jnp.floating):
        assert leaf.dtype == jnp.float32
