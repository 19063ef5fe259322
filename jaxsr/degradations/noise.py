"""Gaussian and Poisson noise of BasicSR (`generate_*_noise_pt`), per sample, in JAX.

Each function takes its random draws explicitly (standard normals, Poisson counts) or a key to
make them, so the arithmetic can be checked against BasicSR given the same draws. Gray noise is
one noise field shared by the three channels; BasicSR's Gaussian gray field is also shared by
every sample of the batch (`torch.randn(h, w)`), a quirk not kept here: each sample draws its
own (the marginal distribution of one sample is the same).
"""

import jax
import jax.numpy as jnp

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision rgb_to_grayscale.
NUM_LEVELS = 256


def to_gray(images: jnp.ndarray) -> jnp.ndarray:
  """[..., 3] -> [..., 1]: torchvision's `rgb_to_grayscale`."""
  r, g, b = images[..., 0:1], images[..., 1:2], images[..., 2:3]
  return GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b


def _per_sample(values: jnp.ndarray, images: jnp.ndarray) -> jnp.ndarray:
  return jnp.asarray(values, images.dtype).reshape((-1,) + (1,) * (images.ndim - 1))


def gaussian_noise(images: jnp.ndarray, sigma: jnp.ndarray, gray: jnp.ndarray,
                   color_draw: jnp.ndarray, gray_draw: jnp.ndarray) -> jnp.ndarray:
  """Noise of BasicSR `generate_gaussian_noise_pt` from standard-normal draws.

  Args:
    images: [B, H, W, C] (only the shape and dtype are used).
    sigma: [B] standard deviations in 8-bit levels (/255 applied here).
    gray: [B] 1 for gray noise, 0 for colour noise.
    color_draw: [B, H, W, C] standard normals; gray_draw: [B, H, W, 1] standard normals.

  Returns:
    [B, H, W, C] noise.
  """
  sigma = _per_sample(sigma, images) / 255.0
  gray = _per_sample(gray, images)
  return color_draw * sigma * (1 - gray) + gray_draw * sigma * gray


def _draw(keys: jax.Array, sample, shape, dtype=jnp.float32) -> jnp.ndarray:
  """[B, *shape] draws, sample b from keys[b] (the same whatever the batch or sharding)."""
  return jax.vmap(lambda k: sample(k, shape, dtype))(keys)


def add_gaussian_noise(images: jnp.ndarray, keys: jax.Array, sigma: jnp.ndarray,
                       gray: jnp.ndarray) -> jnp.ndarray:
  """images + Gaussian noise (sample b drawn from keys[b]), clipped to [0, 1]: [B, H, W, C]."""
  channels = images.shape[-1]
  draws = _draw(keys, jax.random.normal, images.shape[1:-1] + (channels + 1,), images.dtype)
  color_draw, gray_draw = draws[..., :channels], draws[..., channels:]
  return jnp.clip(images + gaussian_noise(images, sigma, gray, color_draw, gray_draw), 0.0, 1.0)


def quantize(images: jnp.ndarray) -> jnp.ndarray:
  """Round to 8-bit levels k / 255 and clip to [0, 1]."""
  return jnp.clip(jnp.round(images * 255.0), 0.0, 255.0) / 255.0


def poisson_vals(quantized: jnp.ndarray, mask: jnp.ndarray = None) -> jnp.ndarray:
  """[B] BasicSR's `vals`: 2 ** ceil(log2(number of distinct 8-bit levels in each image)).

  Args:
    quantized: [B, H, W, C] on 8-bit levels.
    mask: [B, H, W, 1] 1 inside each image's valid region (None: everywhere).
  """
  levels = jnp.round(quantized * 255.0).astype(jnp.int32).reshape((quantized.shape[0], -1))
  if mask is None:
    weights = jnp.ones(levels.shape, jnp.float32)
  else:
    weights = jnp.broadcast_to(mask, quantized.shape).reshape(levels.shape).astype(jnp.float32)
  counts = jax.vmap(lambda l, w: jnp.bincount(l, w, length=NUM_LEVELS))(levels, weights)
  distinct = jnp.maximum(jnp.sum(counts > 0, axis=1), 1).astype(jnp.float32)
  return jnp.exp2(jnp.ceil(jnp.log2(distinct)))


def poisson_noise(quantized: jnp.ndarray, vals: jnp.ndarray, counts: jnp.ndarray) -> jnp.ndarray:
  """counts / vals - quantized: the Poisson noise given counts ~ Poisson(quantized * vals).

  quantized: [B, H, W, C'] on 8-bit levels; vals: [B]; counts: [B, H, W, C'].
  """
  return counts / _per_sample(vals, counts) - quantized


def add_poisson_noise(images: jnp.ndarray, keys: jax.Array, scale: jnp.ndarray,
                      gray: jnp.ndarray, mask: jnp.ndarray = None) -> jnp.ndarray:
  """images + scale * Poisson noise (BasicSR `add_poisson_noise_pt`, clip, no rounding).

  Args:
    images: [B, H, W, 3] in [0, 1].
    keys: [B] PRNG keys, one per sample, for the counts.
    scale: [B] noise scale; gray: [B] 1 for gray noise (drawn on the gray image), else 0.
    mask: [B, H, W, 1] valid region (distinct levels are counted there only), or None.

  Returns:
    [B, H, W, 3] in [0, 1].
  """
  color = quantize(images)
  gray_level = quantize(to_gray(images))
  color_vals, gray_vals = poisson_vals(color, mask), poisson_vals(gray_level, mask)
  # One Poisson draw for both parts (each Poisson program takes seconds to compile on CPU).
  rates = jnp.concatenate([color * _per_sample(color_vals, color),
                           gray_level * _per_sample(gray_vals, gray_level)], axis=-1)
  counts = jax.vmap(lambda k, lam: jax.random.poisson(k, lam))(keys, rates).astype(rates.dtype)
  channels = images.shape[-1]
  noise = poisson_noise(color, color_vals, counts[..., :channels])
  gray_noise = poisson_noise(gray_level, gray_vals, counts[..., channels:])
  gray = _per_sample(gray, images)
  noise = noise * (1 - gray) + gray_noise * gray
  return jnp.clip(images + noise * _per_sample(scale, images), 0.0, 1.0)
