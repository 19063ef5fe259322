"""Adversarial, gram and perceptual/style losses against hand-computed numpy values (float64):
float32 results within `utils.tolerance` of their rounding steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import losses

from tests import utils

pytestmark = pytest.mark.numerics

REAL = np.array([[1.5, -0.5], [0.25, 2.0]], np.float32)
FAKE = np.array([[-1.0, 0.5], [-2.0, 0.0]], np.float32)
# Rounding steps of a loss of 4 logits: a mean (4), a relativistic mean (4), and per logit
# log-sigmoid (exp, log1p: 4 each) and the label products.
LOSS_OPS = 20


def np_bce(logits, label):
  """Mean of -[y log s(x) + (1 - y) log(1 - s(x))], in float64."""
  s = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
  return np.mean(-(label * np.log(s) + (1 - label) * np.log(1 - s)))


def np_relu(x):
  return np.maximum(x, 0.0)


@pytest.mark.parametrize("gan_type,expected", [
    ("vanilla", np_bce(FAKE, 1.0)),
    ("lsgan", np.mean((FAKE - 1.0)**2)),
    ("hinge", -np.mean(FAKE)),
    ("ragan", 0.5 * (np_bce(REAL - FAKE.mean(), 0.0) + np_bce(FAKE - REAL.mean(), 1.0))),
])
def test_generator_loss_values(gan_type, expected):
  got = losses.generator_adversarial_loss(gan_type, jnp.asarray(FAKE), jnp.asarray(REAL))
  assert got.dtype == jnp.float32 and got.shape == ()
  utils.assert_close(got, expected, ops=LOSS_OPS)


def test_vanilla_generator_value_by_hand():
  # BCE(0, 1) = log 2; BCE(log 3, 1) = -log(3/4).
  got = losses.generator_adversarial_loss("vanilla", jnp.array([0.0, np.log(3.0)]))
  utils.assert_close(got, 0.5 * (np.log(2.0) - np.log(0.75)), ops=LOSS_OPS)


@pytest.mark.parametrize("gan_type,real_label", [
    ("vanilla", 1.0), ("vanilla", 0.9), ("lsgan", 1.0), ("lsgan", 0.9), ("hinge", 1.0),
    ("ragan", 1.0), ("ragan", 0.9)])
def test_discriminator_loss_values(gan_type, real_label):
  expected = {
      "vanilla": (np_bce(REAL, real_label), np_bce(FAKE, 0.0)),
      "lsgan": (np.mean((REAL - real_label)**2), np.mean(FAKE**2)),
      "hinge": (np.mean(np_relu(1 - REAL)), np.mean(np_relu(1 + FAKE))),
      "ragan": (0.5 * np_bce(REAL - FAKE.mean(), real_label),
                0.5 * np_bce(FAKE - REAL.mean(), 0.0)),
  }[gan_type]
  got = losses.discriminator_adversarial_loss(gan_type, jnp.asarray(REAL), jnp.asarray(FAKE),
                                              real_label=real_label)
  utils.assert_close(got, expected, ops=LOSS_OPS)


def test_label_smoothing_changes_only_the_real_loss():
  plain = losses.discriminator_adversarial_loss("vanilla", jnp.asarray(REAL), jnp.asarray(FAKE))
  smooth = losses.discriminator_adversarial_loss("vanilla", jnp.asarray(REAL), jnp.asarray(FAKE),
                                                 real_label=0.9)
  assert float(smooth[0]) != pytest.approx(float(plain[0]))
  assert float(smooth[1]) == pytest.approx(float(plain[1]))


def test_bce_is_stable_for_large_logits():
  big = jnp.array([100.0, -100.0])
  g = losses.generator_adversarial_loss("vanilla", big)
  np.testing.assert_allclose(g, 50.0, rtol=1e-5)  # mean(0, 100).
  d_real, d_fake = losses.discriminator_adversarial_loss("vanilla", big, big)
  np.testing.assert_allclose([d_real, d_fake], [50.0, 50.0], rtol=1e-5)


def test_ragan_generator_gradient_does_not_reach_real_logits():
  fake, real = jnp.asarray(FAKE), jnp.asarray(REAL)
  g_fake, g_real = jax.grad(lambda f, r: losses.generator_adversarial_loss("ragan", f, r),
                            argnums=(0, 1))(fake, real)
  np.testing.assert_array_equal(g_real, np.zeros_like(REAL))
  # d/dfake of 0.5*(BCE(r - mean f, 0) + BCE(f - mean r, 1)), by hand (n = 4 logits):
  sig = lambda x: 1 / (1 + np.exp(-x))
  n = REAL.size
  expected = 0.5 * (-np.mean(sig(REAL - FAKE.mean())) / n + (sig(FAKE - REAL.mean()) - 1) / n)
  np.testing.assert_allclose(g_fake, expected, rtol=1e-5, atol=1e-7)


def test_ragan_discriminator_gradients_stop_at_the_other_side():
  def total(r, f):
    return sum(losses.discriminator_adversarial_loss("ragan", r, f))

  g_real, g_fake = jax.grad(total, argnums=(0, 1))(jnp.asarray(REAL), jnp.asarray(FAKE))
  sig = lambda x: 1 / (1 + np.exp(-x))
  n = REAL.size
  np.testing.assert_allclose(g_real, 0.5 * (sig(REAL - FAKE.mean()) - 1) / n, rtol=1e-5)
  np.testing.assert_allclose(g_fake, 0.5 * sig(FAKE - REAL.mean()) / n, rtol=1e-5)


def test_invalid_arguments():
  x = jnp.zeros((2,))
  with pytest.raises(ValueError, match="vanilla.*lsgan.*hinge.*ragan"):
    losses.generator_adversarial_loss("wgan", x)
  with pytest.raises(ValueError, match="ragan"):
    losses.discriminator_adversarial_loss("nope", x, x)
  with pytest.raises(ValueError, match="real_logits"):
    losses.generator_adversarial_loss("ragan", x)
  with pytest.raises(ValueError, match="hinge"):
    losses.discriminator_adversarial_loss("hinge", x, x, real_label=0.9)
  for bad in (0.0, 1.1, -0.5):
    with pytest.raises(ValueError, match="real_label"):
      losses.discriminator_adversarial_loss("vanilla", x, x, real_label=bad)


def test_gram_matrix_by_hand():
  # One image 1x2, 2 channels: pixels (1, 2) and (3, 4); f^T f = [[10, 14], [14, 20]] / (2*1*2).
  f = jnp.array([[[[1.0, 2.0], [3.0, 4.0]]]])
  np.testing.assert_allclose(losses.gram_matrix(f), [[[2.5, 3.5], [3.5, 5.0]]], rtol=1e-6)


def test_gram_matrix_against_numpy():
  f = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype(np.float32)
  flat = f.reshape(2, 15, 4)
  expected = np.einsum("bnc,bnd->bcd", flat, flat) / (4 * 3 * 5)
  got = losses.gram_matrix(jnp.asarray(f))
  assert got.shape == (2, 4, 4)
  utils.assert_close(got, expected, ops=15 + 1)  # Sums over 15 positions, one division.


# A toy "feature extractor": two fixed linear maps of the pixels (one at half resolution).
_W1 = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
_W2 = np.random.default_rng(2).normal(size=(3, 2)).astype(np.float32)


def _toy_features_np(x):
  half = x.reshape(x.shape[0], x.shape[1] // 2, 2, x.shape[2] // 2, 2, 3).mean((2, 4))
  return {"a": x @ _W1, "b": half @ _W2}


def _toy_features(x):
  b, h, w, c = x.shape
  half = x.reshape(b, h // 2, 2, w // 2, 2, c).mean((2, 4))
  return {"a": x @ jnp.asarray(_W1), "b": half @ jnp.asarray(_W2)}


def _np_gram(f):
  b, h, w, c = f.shape
  flat = f.reshape(b, h * w, c).astype(np.float64)
  return np.einsum("bnc,bnd->bcd", flat, flat) / (c * h * w)


_NP_CRITERIA = {
    "l1": lambda a, b: np.mean(np.abs(a - b)),
    "l2": lambda a, b: np.mean((a - b)**2),
    "fro": lambda a, b: np.sqrt(np.sum((a - b)**2)),
}


@pytest.mark.parametrize("criterion", ["l1", "l2", "fro"])
def test_perceptual_and_style_against_numpy(criterion):
  rng = np.random.default_rng(3)
  sr = rng.uniform(size=(2, 4, 6, 3)).astype(np.float32)
  hr = rng.uniform(size=(2, 4, 6, 3)).astype(np.float32)
  weights = {"a": 0.5, "b": 2.0}
  fs, fh = _toy_features_np(sr.astype(np.float64)), _toy_features_np(hr.astype(np.float64))
  crit = _NP_CRITERIA[criterion]
  exp_percep = sum(w * crit(fs[k], fh[k]) for k, w in weights.items())
  exp_style = sum(w * crit(_np_gram(fs[k]), _np_gram(fh[k])) for k, w in weights.items())
  percep, style = losses.perceptual_losses(_toy_features, jnp.asarray(sr), jnp.asarray(hr),
                                           weights, criterion)
  assert percep.dtype == jnp.float32 and style.dtype == jnp.float32
  # Features (3 + 4 terms), gram sums (24 positions), the criterion's sum over <= 192 values.
  utils.assert_close(percep, exp_percep, ops=3 + 4 + 192)
  utils.assert_close(style, exp_style, ops=3 + 4 + 24 + 32)


def test_perceptual_gradients_flow_into_sr_only_and_fro_is_finite_at_zero():
  rng = np.random.default_rng(4)
  sr = jnp.asarray(rng.uniform(size=(1, 4, 4, 3)), jnp.float32)
  hr = jnp.asarray(rng.uniform(size=(1, 4, 4, 3)), jnp.float32)

  def total(s, h, criterion):
    return sum(losses.perceptual_losses(_toy_features, s, h, {"a": 1.0, "b": 1.0}, criterion))

  g_sr, g_hr = jax.grad(total, argnums=(0, 1))(sr, hr, "l2")
  assert float(jnp.abs(g_sr).sum()) > 0
  # Exact zeros: HR features are constants (stop_gradient), and equal inputs give equal
  # features (the same program), so their difference is exactly 0.
  np.testing.assert_array_equal(g_hr, np.zeros(hr.shape))
  same = jax.grad(total)(sr, sr, "fro")  # ||0||_F: zero loss and zero (not NaN) gradient.
  np.testing.assert_array_equal(same, np.zeros(sr.shape))
  assert float(total(sr, sr, "fro")) == 0.0


def test_perceptual_unknown_criterion():
  x = jnp.zeros((1, 2, 2, 3))
  with pytest.raises(ValueError, match="fro"):
    losses.perceptual_losses(_toy_features, x, x, {"a": 1.0}, "l3")
