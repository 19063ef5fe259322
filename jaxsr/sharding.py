"""The device mesh and how batches and states are placed on it.

One mesh axis, `data`: the batch is split over it, states are replicated. The same code runs on
one CPU, N fake CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=N), a GPU/TPU host,
and multi-host (each process feeds its local slice of the global batch).
"""

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def create_mesh() -> jax.sharding.Mesh:
  """A 1-D mesh over every device of every process, axis `data`."""
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,))


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Leading (batch) axis split over `data`."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Same full copy on every device."""
  return NamedSharding(mesh, P())


def to_global(batch: Any, mesh: jax.sharding.Mesh) -> Any:
  """Host-local numpy batch (this process's slice) -> global jax.Arrays sharded over `data`."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)
