"""Gaussian and Poisson noise of BasicSR (`generate_*_noise_pt`), per sample, in JAX.

Each function takes its random draws explicitly (standard normals, Poisson counts) or a key to
make them, so the arithmetic can be checked against BasicSR given the same draws. Gray noise is
one noise field shared by the three channels; BasicSR's Gaussian gray field is also shared by
every sample of the batch (`torch.randn(h, w)`), a quirk not kept here: each sample draws its
own (the marginal distribution of one sample is the same).
"""

import jax
import jax.numpy as jnp
import jax.scipy.special

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


def uniforms(keys: jax.Array, shape) -> jnp.ndarray:
  """[B, *shape] float32 U(0, 1) draws (never 0), sample b from keys[b] (the same whatever the
  batch or its sharding)."""
  u = jax.vmap(lambda k: jax.random.uniform(k, shape, jnp.float32))(keys)
  return jnp.maximum(u, jnp.finfo(jnp.float32).tiny)


def _normals(u: jnp.ndarray) -> jnp.ndarray:
  """Standard normals from U(0, 1) draws (inverse CDF, as jax.random.normal computes them)."""
  return jnp.sqrt(2.0) * jax.scipy.special.erfinv(2.0 * u - 1.0)


def _gaussian_from_uniforms(images, u, sigma, gray):
  channels = images.shape[-1]
  z = _normals(u)
  noise = gaussian_noise(images, sigma, gray, z[..., :channels], z[..., channels:])
  return jnp.clip(images + noise, 0.0, 1.0)


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


MAX_COUNT = 416  # Largest Poisson count drawn: P(X > 416) < 1e-20 for rates <= 256.
_TABLE_WIDTH = 512  # MAX_COUNT + 1 rounded up to a power of two (for the binary search).


def poisson_cdf_table(vals: jnp.ndarray) -> jnp.ndarray:
  """[NUM_LEVELS, 512] CDFs of Poisson(k * vals / 255) for every 8-bit level k (one sample):
  row k, column x = P(X <= x); columns past MAX_COUNT are 2 (never <= a uniform draw)."""
  rate = jnp.arange(NUM_LEVELS, dtype=jnp.float32)[:, None] * vals / 255.0
  x = jnp.arange(_TABLE_WIDTH, dtype=jnp.float32)[None, :]
  log_pmf = x * jnp.log(jnp.maximum(rate, 1e-30)) - rate - jax.lax.lgamma(x + 1.0)
  pmf = jnp.where(rate > 0, jnp.exp(log_pmf), (x == 0).astype(jnp.float32))
  pmf = jnp.where(x <= MAX_COUNT, pmf, 0.0)
  cdf = jnp.cumsum(pmf, axis=1)
  cdf = cdf / cdf[:, MAX_COUNT:MAX_COUNT + 1]
  return jnp.where(x <= MAX_COUNT, cdf, 2.0)


def poisson_from_uniform(levels: jnp.ndarray, u: jnp.ndarray, table: jnp.ndarray) -> jnp.ndarray:
  """Inverse-CDF Poisson draws: the count x with F(x - 1) <= u < F(x) (binary search).

  levels: int32 [...] 8-bit levels k (rate k * vals / 255); u: [...] U[0, 1) draws; table: one
  sample's `poisson_cdf_table`. Returns float32 counts [...].
  """
  flat = table.reshape(-1)
  row = levels * _TABLE_WIDTH
  count = jnp.zeros(levels.shape, jnp.int32)
  step = _TABLE_WIDTH // 2
  while step:
    below = flat[row + count + step - 1] <= u
    count = jnp.where(below, count + step, count)
    step //= 2
  return count.astype(jnp.float32)


def _poisson_from_uniforms(images, u, scale, gray, mask):
  channels = images.shape[-1]
  color = quantize(images)
  gray_level = quantize(to_gray(images))
  color_vals, gray_vals = poisson_vals(color, mask), poisson_vals(gray_level, mask)

  def counts(level_image, vals, draws):
    levels = jnp.round(level_image * 255.0).astype(jnp.int32)
    return jax.vmap(poisson_from_uniform)(levels, draws, jax.vmap(poisson_cdf_table)(vals))

  noise = poisson_noise(color, color_vals, counts(color, color_vals, u[..., :channels]))
  gray_noise = poisson_noise(gray_level, gray_vals,
                             counts(gray_level, gray_vals, u[..., channels:]))
  gray = _per_sample(gray, images)
  noise = noise * (1 - gray) + gray_noise * gray
  return jnp.clip(images + noise * _per_sample(scale, images), 0.0, 1.0)


def add_poisson_noise(images: jnp.ndarray, keys: jax.Array, scale: jnp.ndarray,
                      gray: jnp.ndarray, mask: jnp.ndarray = None) -> jnp.ndarray:
  """images + scale * Poisson noise (BasicSR `add_poisson_noise_pt`, clip, no rounding).

  The counts are drawn by inverting each level's Poisson CDF at one uniform per pixel: exact in
  distribution (to float32 rounding of the CDF), one random-bit program and no rejection loops
  (`jax.random.poisson` loops until every pixel is accepted: ~50 passes over the image on a CPU).

  Args:
    images: [B, H, W, 3] in [0, 1].
    keys: [B] PRNG keys, one per sample, for the counts.
    scale: [B] noise scale; gray: [B] 1 for gray noise (drawn on the gray image), else 0.
    mask: [B, H, W, 1] valid region (distinct levels are counted there only), or None.

  Returns:
    [B, H, W, 3] in [0, 1].
  """
  u = uniforms(keys, images.shape[1:-1] + (images.shape[-1] + 1,))
  return _poisson_from_uniforms(images, u, scale, gray, mask)


def add_noise(images: jnp.ndarray, keys: jax.Array, gaussian: jnp.ndarray, sigma: jnp.ndarray,
              poisson_scale: jnp.ndarray, gray: jnp.ndarray, mask: jnp.ndarray = None
              ) -> jnp.ndarray:
  """Per sample, Gaussian noise (`gaussian[b]`, sigma) or Poisson noise (poisson_scale), colour
  or gray: `gaussian_noise` / `add_poisson_noise` from one set of uniforms (a sample uses only
  one of the two, so they can share its draws: half the random bits).

  images: [B, H, W, 3] in [0, 1]; keys, gaussian (bool), sigma, poisson_scale, gray: [B];
  mask: as for `add_poisson_noise`. Returns [B, H, W, 3] in [0, 1].
  """
  u = uniforms(keys, images.shape[1:-1] + (images.shape[-1] + 1,))
  by_gaussian = _gaussian_from_uniforms(images, u, sigma, gray)
  by_poisson = _poisson_from_uniforms(images, u, poisson_scale, gray, mask)
  return jnp.where(_per_sample(gaussian, images) > 0, by_gaussian, by_poisson)
