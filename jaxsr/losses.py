"""Loss functions: pure functions of arrays, `[B, H, W, C]` images in [0, 1].

The pixel losses each return a float32 scalar (mean over all elements), as BasicSR's losses with
reduction='mean'. Besides them: perceptual/style losses on features (BasicSR `PerceptualLoss`) and
adversarial losses on discriminator logits (BasicSR `GANLoss` and `ESRGANModel`).
"""

from typing import Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import optax

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


def gram_matrix(f: jnp.ndarray) -> jnp.ndarray:
  """BasicSR `_gram_mat`: `[B, H, W, C]` -> `[B, C, C]` = f^T f / (C*H*W), float32."""
  b, h, w, c = f.shape
  f = f.astype(jnp.float32).reshape(b, h * w, c)
  return jnp.einsum("bnc,bnd->bcd", f, f) / (c * h * w)


def frobenius_loss(pred: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
  """||pred - target||_F over all elements (`torch.norm(p='fro')`); gradient 0 where equal."""
  sq = jnp.sum(jnp.square(pred.astype(jnp.float32) - target.astype(jnp.float32)))
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


PERCEPTUAL_CRITERIA: dict = {"l1": l1_loss, "l2": l2_loss, "fro": frobenius_loss}


def perceptual_losses(features_fn: Callable[[jnp.ndarray], Mapping[str, jnp.ndarray]],
                      sr: jnp.ndarray, hr: jnp.ndarray, layer_weights: Mapping[str, float],
                      criterion: str) -> tuple[jnp.ndarray, jnp.ndarray]:
  """BasicSR `PerceptualLoss` with perceptual_weight = style_weight = 1.

  Args:
    features_fn: `[B, H, W, 3]` -> {layer: `[B, h, w, C]`} (e.g. `vgg.make_vgg_feature_fn`).
    sr: network output `[B, H, W, 3]` in [0, 1].
    hr: ground truth `[B, H, W, 3]` in [0, 1]; no gradient flows into it.
    layer_weights: {layer: weight}; the layers summed over.
    criterion: 'l1' | 'l2' (means) | 'fro' (Frobenius norm of the difference).

  Returns:
    (perceptual, style) float32 scalars: sum of weight * criterion(feat_sr, feat_hr), and of
    weight * criterion(gram(feat_sr), gram(feat_hr)).
  """
  if criterion not in PERCEPTUAL_CRITERIA:
    raise ValueError(f"Unknown perceptual criterion '{criterion}'; choose one of "
                     f"{sorted(PERCEPTUAL_CRITERIA)}")
  crit = PERCEPTUAL_CRITERIA[criterion]
  # Two calls rather than one on concat([sr, hr]): the backward pass then covers sr only.
  feat_sr = features_fn(sr)
  feat_hr = jax.lax.stop_gradient(features_fn(jax.lax.stop_gradient(hr)))
  perceptual = style = jnp.zeros((), jnp.float32)
  for layer, weight in layer_weights.items():
    perceptual += weight * crit(feat_sr[layer], feat_hr[layer])
    style += weight * crit(gram_matrix(feat_sr[layer]), gram_matrix(feat_hr[layer]))
  return perceptual, style


GAN_TYPES = ("vanilla", "lsgan", "hinge", "ragan")


def _check_gan_type(gan_type: str) -> None:
  if gan_type not in GAN_TYPES:
    raise ValueError(f"Unknown gan_type '{gan_type}'; choose one of {GAN_TYPES}")


def _bce(logits: jnp.ndarray, label: float) -> jnp.ndarray:
  """Mean binary cross-entropy of `logits` against the constant target `label`."""
  logits = logits.astype(jnp.float32)
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)))


def _mse(logits: jnp.ndarray, label: float) -> jnp.ndarray:
  return jnp.mean(jnp.square(logits.astype(jnp.float32) - label))


def generator_adversarial_loss(gan_type: str, fake_logits: jnp.ndarray,
                               real_logits: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """The generator's adversarial loss (BasicSR `GANLoss(is_disc=False)` / `ESRGANModel`).

  Args:
    gan_type: one of `GAN_TYPES`.
    fake_logits: discriminator logits of the generated images, any shape.
    real_logits: logits of the real images, any shape; required for 'ragan' (where no gradient
      flows into them), ignored otherwise.

  Returns:
    float32 scalar. vanilla: BCE(fake, 1); lsgan: MSE(fake, 1); hinge: -mean(fake);
    ragan: (BCE(real - mean(fake), 0) + BCE(fake - mean(real), 1)) / 2.
  """
  _check_gan_type(gan_type)
  fake = fake_logits.astype(jnp.float32)
  if gan_type == "vanilla":
    return _bce(fake, 1.0)
  if gan_type == "lsgan":
    return _mse(fake, 1.0)
  if gan_type == "hinge":
    return -jnp.mean(fake)
  if real_logits is None:
    raise ValueError("gan_type 'ragan' needs real_logits for the generator loss")
  real = jax.lax.stop_gradient(real_logits.astype(jnp.float32))
  return 0.5 * (_bce(real - jnp.mean(fake), 0.0) + _bce(fake - jnp.mean(real), 1.0))


def discriminator_adversarial_loss(gan_type: str, real_logits: jnp.ndarray,
                                   fake_logits: jnp.ndarray, real_label: float = 1.0
                                   ) -> tuple[jnp.ndarray, jnp.ndarray]:
  """The discriminator's adversarial losses (BasicSR `GANLoss(is_disc=True)` / `ESRGANModel`).

  Args:
    gan_type: one of `GAN_TYPES`.
    real_logits: logits of the real images, any shape.
    fake_logits: logits of the generated images, any shape.
    real_label: target of the real images in (0, 1]; < 1 is one-sided label smoothing (not
      for 'hinge').

  Returns:
    (loss_real, loss_fake) float32 scalars. vanilla: BCE(real, real_label), BCE(fake, 0);
    lsgan: MSE with those targets; hinge: mean(relu(1 - real)), mean(relu(1 + fake)); ragan:
    BCE(real - mean(fake), real_label) / 2, BCE(fake - mean(real), 0) / 2, where (as in
    BasicSR) the other side's mean is under stop_gradient.
  """
  _check_gan_type(gan_type)
  if not 0.0 < real_label <= 1.0:
    raise ValueError(f"real_label must be in (0, 1], got {real_label}")
  if gan_type == "hinge" and real_label != 1.0:
    raise ValueError(f"gan_type 'hinge' has no label smoothing; got real_label={real_label}")
  real, fake = real_logits.astype(jnp.float32), fake_logits.astype(jnp.float32)
  if gan_type == "vanilla":
    return _bce(real, real_label), _bce(fake, 0.0)
  if gan_type == "lsgan":
    return _mse(real, real_label), _mse(fake, 0.0)
  if gan_type == "hinge":
    return jnp.mean(jax.nn.relu(1.0 - real)), jnp.mean(jax.nn.relu(1.0 + fake))
  mean_real, mean_fake = jax.lax.stop_gradient((jnp.mean(real), jnp.mean(fake)))
  return 0.5 * _bce(real - mean_fake, real_label), 0.5 * _bce(fake - mean_real, 0.0)
