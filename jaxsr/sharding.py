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


def cpu_data_parallel() -> bool:
  """Whether programs traced now run on several CPU devices (fake ones, or one per process).

  XLA:CPU (jax 0.10) does not keep a collective inside a loop (`while`) in order with those
  outside it (the cross-device gradient sums of a data-parallel step): a 2-device GAN step
  once waited in the loop's all-reduce on one thread and in a top-level one on another, with
  every thread of the 2-core pool taken, until the in-process rendezvous timed out (2 of ~30
  test-suite runs). Code whose loop would hold a gradient sum over the sharded batch keeps it
  out of the loop here (`trunk.apply_blocks` unrolls; the CPU filter gradient sums per device
  group, `ops/conv.py`)."""
  return jax.default_backend() == "cpu" and jax.device_count() > 1


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
