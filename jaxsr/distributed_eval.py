"""Whole-image evaluation spread over every device of every process, gathered exactly.

Image i runs on `jax.devices()[i % jax.device_count()]` (global order): each process runs only
the images of its own devices, on a copy of the variables on that device (no cross-process
program per image: images differ in size), dispatching asynchronously over its local devices.
What the host makes of each output (metrics' sufficient statistics, small crops, ...) is then
gathered to every process in image order, so every process reduces the same values in the same
order and N processes give bitwise the numbers of one.
"""

import collections
import pickle
from typing import Any, Callable, Dict, List, Sequence

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np


def image_device(index: int) -> jax.Device:
  """The device that evaluates image `index`: round-robin over all devices of all processes."""
  devices = jax.devices()
  return devices[index % len(devices)]


def _on_device(x, device: jax.Device):
  """`x` (numpy, or a jax.Array replicated or addressable here) as a full copy on `device`."""
  if isinstance(x, jax.Array):
    for shard in x.addressable_shards:
      if shard.device == device and shard.data.shape == x.shape:
        return shard.data  # A replica already there: no copy.
    if x.is_fully_replicated:
      x = x.addressable_data(0)
    elif not x.is_fully_addressable:
      raise ValueError(f"Variables must be replicated to be evaluated per device: {x.sharding}")
  return jax.device_put(x, device)


def on_device(tree: Any, device: jax.Device) -> Any:
  """Every leaf of `tree` as a full single-device copy on `device` (a local device)."""
  return jax.tree.map(lambda x: _on_device(x, device), tree)


def allgather_objects(obj: Any) -> List[Any]:
  """[the `obj` of process 0, of process 1, ...] on every process (pickled, exchanged as uint8
  arrays padded to a power of two so that repeated calls reuse the compiled gather)."""
  if jax.process_count() == 1:
    return [obj]
  data = np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
  sizes = np.asarray(multihost_utils.process_allgather(np.array([data.size], np.int32)))
  padded = np.zeros(1 << max(10, int(sizes.max() - 1).bit_length()), np.uint8)
  padded[:data.size] = data
  gathered = np.asarray(multihost_utils.process_allgather(padded))
  return [pickle.loads(gathered[p, :sizes[p, 0]].tobytes()) for p in range(len(sizes))]


def map_images(sr_fn: Callable, variables: Any, lrs: Sequence[np.ndarray],
               finish: Callable[[int, np.ndarray], Any]) -> List[Any]:
  """Runs the model on every image, each on its `image_device`; returns on every process
  `[finish(i, sr_i) for every i]`, each computed by the process of image i, in order.

  Args:
    sr_fn: `(variables, lr [h, w, 3]) -> sr [h*s, w*s, 3]` as `evaluate.make_sr_fn`; its
      `device_fn` (the jitted function, device arrays out) is used when it has one, so that
      the local devices run concurrently.
    variables: model variables: numpy, or jax.Arrays replicated over the devices.
    lrs: the LR images, float32 `[h, w, 3]` in [0, 1], the same list on every process.
    finish: `(i, sr float32 [h*s, w*s, 3]) -> picklable` host work on one output, called in
      increasing i on the process of image i.
  """
  run = getattr(sr_fn, "device_fn", sr_fn)
  mine = [i for i in range(len(lrs)) if image_device(i).process_index == jax.process_index()]
  logging.info("Process %d runs %d of %d images on %d local devices", jax.process_index(),
               len(mine), len(lrs), jax.local_device_count())
  max_in_flight = 2 * jax.local_device_count()  # Bounds the outputs held on the devices.
  copies: Dict[jax.Device, Any] = {}
  pending = collections.deque()
  local = {}
  for i in mine:
    device = image_device(i)
    if device not in copies:
      copies[device] = on_device(variables, device)
    pending.append((i, run(copies[device], jax.device_put(lrs[i], device))))
    while len(pending) >= max_in_flight or (pending and i == mine[-1]):
      j, sr = pending.popleft()
      local[j] = finish(j, np.asarray(sr))
  merged = {}
  for part in allgather_objects(local):
    merged.update(part)
  return [merged[i] for i in range(len(lrs))]
