"""Real-world training pairs (degradations, crop, pool, USM targets) on tiny images; training and
exact resume of the real-world configs are in test_realworld_configs.py."""

import jax
import numpy as np
import pytest

from jaxsr import builders
from jaxsr import sharding
from jaxsr.degradations import pairs

from tests import utils


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
  return utils.make_image_folder(tmp_path_factory.mktemp("images") / "train", count=6,
                                 size=(40, 48), seed=1)


@pytest.mark.exact("the pool stores and returns 8-bit levels: pairs are copies")
def test_pool_fills_then_exchanges():
  pool = pairs.init_pool(queue_size=4, gt_size=4, scale=2)
  key = jax.random.key(0)
  batches = [(np.full((2, 2, 2, 3), v / 255, np.float32), np.full((2, 4, 4, 3), v / 255,
                                                                  np.float32))
             for v in (10, 20, 30, 40, 50)]
  exchange = jax.jit(pairs.pool_exchange)
  seen = []
  for lq, gt in batches:
    pool, out_lq, out_gt = exchange(pool, lq, gt, key)
    seen.append(np.round(np.asarray(out_lq)[:, 0, 0, 0] * 255))
    # Pairs stay paired: LR and HR of a pair hold the same value.
    np.testing.assert_array_equal(np.asarray(out_lq)[:, 0, 0, 0], np.asarray(out_gt)[:, 0, 0, 0])
  np.testing.assert_array_equal(seen[0], [10, 10])  # Filling: trained on as they come.
  np.testing.assert_array_equal(seen[1], [20, 20])
  assert int(pool["count"]) == 4
  # Full: batches 3..5 get pairs from the pool (values of earlier batches), the new ones go in.
  stored = np.asarray(pool["lq"])[:, 0, 0, 0].tolist()  # uint8 levels.
  for later in seen[2:]:
    assert set(later) <= {10, 20, 30, 40}
  # Nothing lost or duplicated: what the pool holds plus what left it is what went in.
  assert sorted(stored + [v for s in seen[2:] for v in s]) == sorted(
      [v for v in (10, 20, 30, 40, 50) for _ in range(2)])


@pytest.mark.exact("the same compiled program on the same inputs (resume relies on it)")
def test_pairs_have_the_right_shapes_and_usm_targets(train_dir):
  config = utils.tiny_realworld_config(train_dir)
  config.degradation.gan_gt_usm = True
  make = jax.jit(pairs.make_pair_fn(config))
  pool = pairs.init_pool(8, 16, 2)
  hr = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
  pool, batch = make(pool, hr, np.int32(0))
  assert batch["lr"].shape == (4, 8, 8, 3) and batch["hr"].shape == (4, 16, 16, 3)
  assert set(batch) == {"lr", "hr", "hr_pixel", "hr_percep", "hr_gan"}
  assert np.abs(np.asarray(batch["hr_pixel"]) - np.asarray(batch["hr"])).max() > 0.01
  # Each HR target is a crop of its own input image (not of another sample's).
  for b in range(4):
    crop = np.round(np.asarray(batch["hr"][b]) * 255).astype(np.uint8)
    windows = np.lib.stride_tricks.sliding_window_view(hr[b], (16, 16, 3))[..., 0, :, :, :]
    assert np.any(np.all(windows == crop, axis=(-3, -2, -1)))
  _, again = make(pairs.init_pool(8, 16, 2), hr, np.int32(0))
  np.testing.assert_array_equal(np.asarray(again["lr"]), np.asarray(batch["lr"]))
  _, other_step = make(pairs.init_pool(8, 16, 2), hr, np.int32(1))
  assert np.abs(np.asarray(other_step["lr"]) - np.asarray(batch["lr"])).mean() > 1e-3


def test_abstract_state_of_a_realworld_run_has_the_pool(train_dir):
  config = utils.tiny_realworld_config(train_dir)
  comps = builders.components_from_config(config)
  abstract = builders.abstract_state(config, comps, sharding.create_mesh())
  assert abstract.pool["gt"].shape == (8, 16, 16, 3)
  assert abstract.pool["gt"].dtype == np.uint8
