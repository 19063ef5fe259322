"""Shared pytest setup: CPU only, TensorFlow quiet, paths to committed test data."""

import os
import pathlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest  # noqa: E402

DATA_DIR = pathlib.Path(__file__).parent / "data"


@pytest.fixture
def data_dir():
  """Folder of committed test data (golden vectors, tiny images)."""
  return DATA_DIR
