"""Checkpoint retention (last K + best by validation Y-PSNR) and step resolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import checkpointing
from jaxsr import sharding


def _target():
  return {"w": jax.ShapeDtypeStruct((2,), jnp.float32,
                                    sharding=sharding.replicated(sharding.create_mesh()))}


def _save(manager, step, psnr=None):
  state = {"w": jnp.full((2,), float(step))}
  metrics = None if psnr is None else {"val_psnr_y": psnr, "val_ssim_y": 0.5}
  checkpointing.save(manager, step, state, {"next_step": step}, metrics)


def test_keeps_last_k_and_best(tmp_path):
  manager = checkpointing.create_manager(str(tmp_path), keep=2)
  _save(manager, 1, psnr=30.0)
  _save(manager, 2, psnr=33.0)  # The best.
  _save(manager, 3, psnr=31.0)
  _save(manager, 4)  # Saved without validation (e.g. on interrupt).
  _save(manager, 5, psnr=32.0)
  assert sorted(manager.all_steps()) == [2, 4, 5]
  assert checkpointing.resolve_step(manager, "best") == 2
  assert checkpointing.resolve_step(manager, "latest") == 5
  assert checkpointing.resolve_step(manager, "4") == 4
  state, data = checkpointing.restore(manager, 2, _target())
  np.testing.assert_array_equal(state["w"], [2.0, 2.0])
  assert data == {"next_step": 2}
  with pytest.raises(ValueError, match="No checkpoint at step 3"):
    checkpointing.resolve_step(manager, "3")
  with pytest.raises(ValueError, match="best, latest or a step"):
    checkpointing.resolve_step(manager, "newest")


def test_saving_an_existing_step_is_a_no_op(tmp_path):
  manager = checkpointing.create_manager(str(tmp_path), keep=2)
  _save(manager, 1)
  checkpointing.save(manager, 1, {"w": jnp.full((2,), 9.0)}, {"next_step": 1})
  state, _ = checkpointing.restore(manager, 1, _target())
  np.testing.assert_array_equal(state["w"], [1.0, 1.0])


def test_best_falls_back_to_latest_without_validation_metrics(tmp_path):
  manager = checkpointing.create_manager(str(tmp_path), keep=3)
  _save(manager, 1)
  _save(manager, 2)
  assert checkpointing.resolve_step(manager, "best") == 2


def test_empty_workdir_has_no_checkpoint(tmp_path):
  manager = checkpointing.create_manager(str(tmp_path), read_only=True)
  with pytest.raises(ValueError, match="No checkpoint in"):
    checkpointing.resolve_step(manager, "best")


def test_quiet_orbax_info_keeps_own_info_and_orbax_warnings():
  import logging as std_logging  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  handler = logging.get_absl_handler()
  before = list(handler.filters)
  try:
    checkpointing.quiet_orbax_info()
    record = lambda level, path: std_logging.LogRecord("absl", level, path, 1, "m", None, None)
    orbax_path = "/venv/site-packages/orbax/checkpoint/checkpoint_manager.py"
    assert not handler.filter(record(std_logging.INFO, orbax_path))
    assert handler.filter(record(std_logging.WARNING, orbax_path))
    assert handler.filter(record(std_logging.INFO, "/work/jaxsr/upscale.py"))
  finally:
    handler.filters[:] = before
