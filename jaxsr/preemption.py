"""When to save and stop on preemption, decided identically on every process.

One process: SIGTERM (a scheduler's preemption, `kill`) sets a flag that the loop reads between
steps, where the state is whole. Several processes (`jax.distributed.initialize`): JAX's own
preemption service handles SIGTERM on any host (its notice reaches every process) and
`multihost_utils.reached_preemption_sync_point(step)` turns true on all of them at the same
step, the first one every process can still reach; so all processes save the same checkpoint and
stop together. That is what spot TPU VMs, GCE maintenance shutdowns and SLURM send (SIGTERM).
"""

import signal
import threading

from absl import logging
import jax
from jax.experimental import multihost_utils


class StopSignal:
  """Context manager; `reached(step)` is True at the step where training must save and stop.

  Must be asked at every step, by every process, from the same starting step (JAX's sync
  protocol needs that). In one process a second SIGTERM interrupts at once (KeyboardInterrupt).
  """

  def __init__(self):
    self.requested = False
    self._previous = None
    self._synced = jax.distributed.is_initialized()

  def _handle(self, signum, frame):
    del frame
    if self.requested:
      raise KeyboardInterrupt(f"signal {signum} (second)")
    self.requested = True
    logging.warning("Received signal %d: saving and stopping after this step.", signum)

  def __enter__(self):
    # With jax.distributed, the preemption service's own SIGTERM handler must stay in place.
    if not self._synced and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def reached(self, step: int) -> bool:
    """Whether to save at `step` and stop (same answer on every process)."""
    if self._synced:
      self.requested = multihost_utils.reached_preemption_sync_point(step)
      if self.requested:
        logging.warning("Preemption notice: every process stops at step %d.", step)
    return self.requested
