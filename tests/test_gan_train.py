"""GAN training on tiny images: both networks learn, the step's parts do what they say, resume
is exact, PSNR runs initialise a GAN, bad configs fail early, evaluation reads GAN checkpoints."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxsr import builders
from jaxsr import config_base
from jaxsr import evaluate
from jaxsr import sharding
from jaxsr import steps
from jaxsr import train
from jaxsr.models import vgg

from tests import utils
from tests.utils import assert_trees_equal, saved_state


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
  root = tmp_path_factory.mktemp("images")
  return (utils.make_image_folder(root / "train", count=6, size=(40, 48), seed=1),
          utils.make_image_folder(root / "val", count=2, size=(36, 44), seed=2))


def _random_batch(config, seed=0):
  rng = np.random.default_rng(seed)
  hr = rng.random((config.batch_size, config.data.gt_size, config.data.gt_size, 3), np.float32)
  lr = hr.reshape(config.batch_size, config.data.gt_size // config.scale, config.scale,
                  config.data.gt_size // config.scale, config.scale, 3).mean((2, 4))
  return {"lr": jnp.asarray(lr), "hr": jnp.asarray(hr)}


def _build(config):
  """(components, fresh state, jitted `step(state, batch)`)."""
  mesh = sharding.create_mesh()
  comps = builders.components_from_config(config)
  step_fn, loss_variables = builders.train_step_from_config(config, comps)
  step_fn = jax.jit(step_fn)
  return (comps, builders.build_state(config, comps, mesh),
          lambda state, batch: step_fn(state, batch, loss_variables))


def _changed(a, b) -> bool:
  return any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(jax.device_get(a)),
                                                      jax.tree.leaves(jax.device_get(b))))


@pytest.mark.parametrize("generator,discriminator,gan_type", [
    ("seed", "seed", "vanilla"), ("msrresnet", "unet_sn", "hinge"),
    ("msrresnet", "vgg_style", "ragan"), ("seed", "seed", "lsgan")])
def test_gan_steps_change_both_networks_and_stay_finite(folders, generator, discriminator,
                                                        gan_type):
  config = utils.tiny_gan_config(folders[0], generator=generator, discriminator=discriminator)
  config.loss.gan_type = gan_type
  if discriminator == "vgg_style":  # It takes 128x128 only.
    config.data.gt_size, config.batch_size = 128, 2
  _, state, step = _build(config)
  start = jax.device_get(state)
  batch = _random_batch(config)
  for _ in range(3):
    state, metrics = step(state, batch)
  metrics = jax.device_get(metrics)
  for name in ("loss_g", "loss_pixel", "loss_gan", "loss_d_real", "loss_d_fake", "d_real",
               "d_fake", "psnr", "grad_norm_g", "grad_norm_d", "learning_rate_g",
               "learning_rate_d"):
    assert np.isfinite(metrics[name]), name
  assert int(state.step) == 3
  assert _changed(start.params, state.params) and _changed(start.d_params, state.d_params)
  assert _changed(start.ema_params, state.ema_params)
  if start.d_model_state:  # BatchNorm statistics / spectral-norm vectors move in training.
    assert _changed(start.d_model_state, state.d_model_state)
  if generator == "seed":
    assert _changed(start.model_state, state.model_state)


@pytest.mark.numerics
def test_gan_step_without_adversarial_term_updates_g_like_the_psnr_step(folders):
  """The vjp-based generator update equals plain PSNR training when gan_weight = 0."""
  config = utils.tiny_gan_config(folders[0], generator="msrresnet")
  config.loss.gan_weight = 0.0
  comps, gan_state, gan_step = _build(config)
  content_loss, loss_variables = builders.content_loss_from_config(config)
  psnr_step = jax.jit(steps.make_psnr_train_step(
      builders.make_train_apply_fn(comps.model), comps.tx, content_loss, config.ema_decay,
      comps.schedule))
  psnr_state = builders.build_state(config_base.base_config(), comps._replace(discriminator=None),
                                    sharding.create_mesh())
  psnr_state = psnr_state.replace(params=gan_state.params, ema_params=gan_state.ema_params,
                                  opt_state=comps.tx.init(gan_state.params))
  batch = _random_batch(config)
  for _ in range(2):
    gan_state, gan_metrics = gan_step(gan_state, batch)
    psnr_state, psnr_metrics = psnr_step(psnr_state, batch, loss_variables)
  # Two programs: rounding of G's forward / backward and of the loss's mean over the batch.
  ops = utils.network_ops(gan_state.params) + batch["hr"].size
  utils.assert_close(gan_metrics["loss_pixel"], psnr_metrics["loss_pixel"], ops=ops)
  utils.assert_trained_close(gan_state.params, psnr_state.params, ops,
                             config.optim.learning_rate, steps=2)


def test_d_warmup_keeps_g_and_d_first_and_d_steps_are_honoured(folders):
  config = utils.tiny_gan_config(folders[0], generator="msrresnet")
  config.gan.d_warmup_steps = 2
  _, state, step = _build(config)
  start = jax.device_get(state)
  batch = _random_batch(config)
  state, _ = step(state, batch)
  state, _ = step(state, batch)
  assert not _changed(start.params, state.params) and not _changed(start.opt_state, state.opt_state)
  assert _changed(start.d_params, state.d_params)
  state, _ = step(state, batch)
  assert _changed(start.params, state.params)

  # Two D updates per step: Adam's step count on D is twice the step count.
  config = utils.tiny_gan_config(folders[0], generator="msrresnet")
  config.gan.d_steps_per_g_step, config.gan.d_first = 2, True
  _, state, step = _build(config)
  state, _ = step(state, batch)
  counts = [int(x) for x in jax.tree.leaves(state.d_opt_state) if np.ndim(x) == 0]
  assert counts and all(c == 2 for c in counts)
  counts = [int(x) for x in jax.tree.leaves(state.opt_state) if np.ndim(x) == 0]
  assert counts and all(c == 1 for c in counts)


@pytest.mark.numerics
def test_d_first_judges_g_with_the_updated_discriminator(folders):
  """With d_first, G's adversarial loss is computed by D after its update, so it differs from
  G-first on the same state and batch, while the D update itself is the same (the seed D's
  BatchNorm uses batch statistics in training, so its earlier forwards do not change it)."""
  results = {}
  for d_first in (False, True):
    config = utils.tiny_gan_config(folders[0], generator="msrresnet")
    config.gan.d_first = d_first
    _, state, step = _build(config)
    results[d_first] = jax.device_get(step(state, _random_batch(config)))
  (g_first, m_g), (d_first, m_d) = results[False], results[True]
  # The same D computations in two step programs: equal up to their rounding (D's forward and
  # backward, the loss's mean over the batch).
  ops = utils.network_ops(g_first.d_params) + _random_batch(config)["hr"].size
  utils.assert_close(m_g["loss_d_real"], m_d["loss_d_real"], ops=ops)
  assert m_g["loss_gan"] != m_d["loss_gan"]
  utils.assert_trained_close(g_first.d_params, d_first.d_params, ops,
                             config.optim_d.learning_rate, steps=1)


def test_gan_run_resumes_exactly_and_evaluates(folders, tmp_path):
  train_dir, val_dir = folders
  config = utils.tiny_gan_config(train_dir, val_dir)
  straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
  config.num_train_steps = 3
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  config.num_train_steps = 6
  resumed = train.train_and_evaluate(config, str(tmp_path / "resumed"))
  assert_trees_equal(jax.device_get(resumed), jax.device_get(straight))
  saved, _ = saved_state(tmp_path / "resumed")
  assert set(saved) >= {"d_params", "d_model_state", "d_opt_state", "model_state"}
  assert saved["d_model_state"]["batch_stats"] and saved["model_state"]["batch_stats"]
  assert sorted(os.listdir(tmp_path / "resumed" / "samples")) == [
      "val_step0000003.png", "val_step0000006.png"]

  config.eval.checkpoint = "latest"
  results = evaluate.evaluate(config, str(tmp_path / "resumed"))
  assert results["val"]["checkpoint_step"] == 6 and results["val"]["psnr_y"] > 10


def test_gan_initialised_from_a_psnr_run(folders, tmp_path):
  train_dir, _ = folders
  psnr_config = utils.tiny_config(train_dir)
  psnr_config.model = utils.tiny_gan_config(train_dir).model  # The seed G, with BatchNorm.
  source = train.train_and_evaluate(psnr_config, str(tmp_path / "psnr"))

  config = utils.tiny_gan_config(train_dir)
  config.init_from = str(tmp_path / "psnr" / "checkpoints" / "6")
  config.num_train_steps = 1
  config.optim.learning_rate = 0.0  # G keeps what it started from (BN statistics move).
  started = train.train_and_evaluate(config, str(tmp_path / "gan"))
  assert_trees_equal(jax.device_get(started.params), jax.device_get(source.ema_params))

  config.init_from = str(tmp_path / "psnr" / "checkpoints" / "5")
  with pytest.raises(ValueError, match="No checkpoint at step 5"):
    train.train_and_evaluate(config, str(tmp_path / "gan_bad"))


def test_gan_with_perceptual_and_style_losses_trains(folders, tmp_path):
  """Feature losses on random VGG19 weights (a file in Keras' layout) in a GAN run: every term
  is logged and finite, and the VGG weights are an argument of the step, not a constant."""
  weights = str(tmp_path / "vgg19.h5")
  variables = vgg.TorchvisionFeatures(("conv5_4",)).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
  vgg.save_keras_h5(weights, jax.device_get(variables["params"]))
  config = utils.tiny_gan_config(folders[0])
  config.loss.vgg_weights = weights
  config.loss.perceptual_weight, config.loss.style_weight = 1.0, 10.0
  config.loss.perceptual_layers = "relu1_2:0.5,conv2_1:1.0"
  _, state, step = _build(config)
  _, loss_variables = builders.content_loss_from_config(config)
  assert set(loss_variables["vgg"]["params"]) == {"conv1_1", "conv1_2", "conv2_1"}
  state, metrics = step(state, _random_batch(config))
  for name in ("loss_pixel", "loss_percep", "loss_style", "loss_gan", "loss_g"):
    assert np.isfinite(metrics[name]) and metrics[name] > 0, name
  utils.assert_close(  # The step sums the four float32 terms.
      metrics["loss_g"], sum(metrics[k] for k in ("loss_pixel", "loss_percep", "loss_style",
                                                  "loss_gan")), ops=4)


def test_perceptual_loss_without_weights_fails_before_training(folders, tmp_path, monkeypatch):
  config = utils.tiny_gan_config(folders[0])
  config.loss.perceptual_weight = 1.0
  config.loss.vgg_weights = str(tmp_path / "missing_vgg19.h5")
  with pytest.raises(FileNotFoundError, match="vgg"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_non_finite_loss_weight_is_refused_before_training(folders, tmp_path):
  """An infinite weight is a config error; a loss term that becomes NaN/Inf while training is
  tests/test_faults.py's (every PSNR and GAN term)."""
  config = utils.tiny_gan_config(folders[0])
  config.loss.gan_weight = float("inf")
  with pytest.raises(ValueError, match=r"loss.gan_weight=inf must be a float \(finite\)"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_gan_config_validation():
  config = utils.tiny_gan_config("/nonexistent")
  config.loss.gan_type = "wgan"
  config.loss.real_label = 1.5
  config.gan.d_steps_per_g_step = 0
  config.optim_d.schedule = "linear"
  with pytest.raises(ValueError) as e:
    config_base.validate(config)
  for text in ("loss.gan_type='wgan'", "loss.real_label=1.5", "gan.d_steps_per_g_step=0",
               "optim_d.schedule='linear'"):
    assert text in str(e.value)
  psnr = config_base.base_config()
  psnr.gan = config.gan
  with pytest.raises(ValueError, match="unknown config key 'gan.d_first'"):
    config_base.validate(psnr)


def test_paper_configs_build(monkeypatch):
  """Each shipped GAN config validates and builds its models and optimizers."""
  import importlib.util
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  for name in ("srgan_x4", "esrgan_x4", "seed_gan_x4"):
    spec = importlib.util.spec_from_file_location(name, os.path.join(repo, "configs",
                                                                     name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config_base.validate(config, 1)
    comps = builders.components_from_config(config)
    assert comps.discriminator is not None and isinstance(comps.d_tx,
                                                          optax.GradientTransformation)
