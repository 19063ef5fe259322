"""Shared pytest setup: CPU only, TensorFlow quiet, paths to committed test data."""

import os
import pathlib
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Many tests compile the same tiny programs (model init is slow to compile on CPU): share them
# through JAX's persistent compilation cache, also across the subprocesses tests start.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"jaxsr_test_jax_cache_{os.getuid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import pytest  # noqa: E402

from tests import numeric_policy  # noqa: E402
# Autouse: fails float comparisons that assume last-place agreement (see numeric_policy).
from tests.numeric_policy import numeric_policy as _numeric_policy  # noqa: E402,F401

DATA_DIR = pathlib.Path(__file__).parent / "data"


@pytest.fixture
def data_dir():
  """Folder of committed test data (golden vectors, tiny images)."""
  return DATA_DIR


def pytest_configure(config):
  numeric_policy.register_marker(config)
  config.addinivalue_line(
      "markers", "numerics: compares floating-point results of two programs (implementations, "
      "runtimes, jit vs eager, golden data): tolerances must hold on any instruction set; CI "
      "reruns these with XLA_FLAGS=--xla_cpu_max_isa=... (pytest -m numerics)")
