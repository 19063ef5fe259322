"""Real-world training pairs on the device: HR crops -> degraded LR -> random crop -> pool -> USM
targets (what `RealESRNetModel.feed_data` does after the data loader), one pure function.

Randomness is keyed by (seed, step, index in the global batch): the same batch on any number of
devices and after resume. The training-pair pool (Real-ESRGAN's `queue_size`) is part of the
train state (`TrainState.pool`, uint8, checkpointed), so resume is exact too. Differences from
the reference, on purpose: the crop offset is drawn per sample (the reference crops the whole
batch at one offset), and the pool is one pool for the global batch (the reference keeps one per
GPU), so a run is the same on 1 or N devices.
"""

from typing import Callable, Dict, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from jaxsr.degradations import filters
from jaxsr.degradations import pipeline

# Streams of the per-step key (fold_in constants).
_DEGRADE, _CROP, _POOL = 0, 1, 2
_STREAM_SALT = 0x5EA1  # Keeps these keys apart from the ones seeded by `seed` elsewhere.

Pool = Dict[str, jnp.ndarray]
Batch = Dict[str, jnp.ndarray]


def init_pool(queue_size: int, gt_size: int, scale: int) -> Pool:
  """An empty pool: 'lq' uint8 [Q, g/s, g/s, 3], 'gt' uint8 [Q, g, g, 3], 'count' int32 (filled
  entries); {} when queue_size is 0."""
  if not queue_size:
    return {}
  lr = gt_size // scale
  return {"lq": jnp.zeros((queue_size, lr, lr, 3), jnp.uint8),
          "gt": jnp.zeros((queue_size, gt_size, gt_size, 3), jnp.uint8),
          "count": jnp.zeros((), jnp.int32)}


def _to_uint8(images: jnp.ndarray) -> jnp.ndarray:
  return jnp.round(jnp.clip(images, 0.0, 1.0) * 255.0).astype(jnp.uint8)


def pool_exchange(pool: Pool, lq: jnp.ndarray, gt: jnp.ndarray, key: jax.Array
                  ) -> Tuple[Pool, jnp.ndarray, jnp.ndarray]:
  """Real-ESRGAN's `_dequeue_and_enqueue`: while filling, the batch is stored and trained on as
  is; once full, the pool is shuffled, its first B pairs are trained on and replaced by the batch.

  Args:
    pool: see `init_pool` (Q a multiple of B).
    lq, gt: the new pairs, [B, l, l, 3] / [B, g, g, 3] in [0, 1] on 8-bit levels.
    key: PRNG key of the shuffle.

  Returns:
    (pool, lq, gt) with lq / gt the pairs to train on, float32 in [0, 1].
  """
  batch = lq.shape[0]
  new_lq, new_gt = _to_uint8(lq), _to_uint8(gt)

  def fill(pool):
    start = pool["count"]
    stored = {"lq": jax.lax.dynamic_update_slice_in_dim(pool["lq"], new_lq, start, 0),
              "gt": jax.lax.dynamic_update_slice_in_dim(pool["gt"], new_gt, start, 0),
              "count": start + batch}
    return stored, new_lq, new_gt

  def exchange(pool):
    order = jax.random.permutation(key, pool["lq"].shape[0])
    lq_all, gt_all = pool["lq"][order], pool["gt"][order]
    stored = {"lq": lq_all.at[:batch].set(new_lq), "gt": gt_all.at[:batch].set(new_gt),
              "count": pool["count"]}
    return stored, lq_all[:batch], gt_all[:batch]

  pool, out_lq, out_gt = jax.lax.cond(pool["count"] < pool["lq"].shape[0], fill, exchange, pool)
  return pool, out_lq.astype(jnp.float32) / 255.0, out_gt.astype(jnp.float32) / 255.0


def random_crop(lq: jnp.ndarray, gt: jnp.ndarray, keys: jax.Array, lq_size: int,
                scale: int) -> Tuple[jnp.ndarray, jnp.ndarray]:
  """Aligned random crops (BasicSR `paired_random_crop`, offset per sample).

  lq [B, L, L, C], gt [B, L s, L s, C], keys [B] -> ([B, lq_size, lq_size, C],
  [B, lq_size s, lq_size s, C]).
  """
  limit = lq.shape[1] - lq_size + 1

  def one(lq, gt, key):
    top, left = jax.random.randint(key, (2,), 0, limit)
    lq = jax.lax.dynamic_slice(lq, (top, left, 0), (lq_size, lq_size, lq.shape[-1]))
    gt = jax.lax.dynamic_slice(gt, (top * scale, left * scale, 0),
                               (lq_size * scale, lq_size * scale, gt.shape[-1]))
    return lq, gt

  return jax.vmap(one)(lq, gt, keys)


def step_keys(seed: int, step: jnp.ndarray, stream: int, batch: int) -> jax.Array:
  """[batch] keys of `stream` for `step`: sample i's key depends on (seed, step, i) only."""
  base = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), _STREAM_SALT), stream)
  step_key = jax.random.fold_in(base, step)
  return jax.vmap(lambda i: jax.random.fold_in(step_key, i))(jnp.arange(batch))


def make_pair_fn(config: ml_collections.ConfigDict) -> Callable:
  """`pairs(pool, hr, step) -> (pool, batch)` for a real-world config.

  hr: uint8 [B, P, P, 3] crops (P = data.crop_pad_size) from the host pipeline; step: int32.
  batch: 'lr' [B, g/s, g/s, 3], 'hr' [B, g, g, 3] float32 in [0, 1] (g = data.gt_size), plus the
  USM-sharpened HR as 'hr_pixel' / 'hr_percep' / 'hr_gan' when `degradation.l1_gt_usm` /
  `percep_gt_usm` / `gan_gt_usm` (the losses take these targets when present).
  """
  d = config.degradation
  scale, gt_size, seed = config.scale, config.data.gt_size, config.seed
  degrader = pipeline.make_degrader(d, config.data.crop_pad_size, scale)
  usm_targets = [name for name, flag in (("hr_pixel", d.l1_gt_usm),
                                         ("hr_percep", d.percep_gt_usm),
                                         ("hr_gan", d.gan_gt_usm)) if flag]

  def pairs(pool: Pool, hr: jnp.ndarray, step: jnp.ndarray) -> Tuple[Pool, Batch]:
    batch = hr.shape[0]
    gt = hr.astype(jnp.float32) / 255.0
    lq = degrader.apply(degrader.sample(step_keys(seed, step, _DEGRADE, batch)), gt)
    lq, gt = random_crop(lq, gt, step_keys(seed, step, _CROP, batch), gt_size // scale, scale)
    if pool:
      pool, lq, gt = pool_exchange(pool, lq, gt, step_keys(seed, step, _POOL, 1)[0])
    out = {"lr": lq, "hr": gt}
    if usm_targets:
      sharp = filters.usm_sharp(gt, d.usm_weight, d.usm_radius, d.usm_threshold)
      out.update({name: sharp for name in usm_targets})
    return pool, out

  return pairs
