"""When to save and stop on preemption, decided identically on every process.

One process: SIGTERM (a scheduler's preemption, `kill`) sets a flag that the loop reads between
steps, where the state is whole. Several processes (`jax.distributed.initialize`): JAX's own
preemption service handles SIGTERM on any host (its notice reaches every process) and
`multihost_utils.reached_preemption_sync_point(step)` turns true on all of them at the same
step, the first one every process can still reach; so all processes save the same checkpoint and
stop together. That is what spot TPU VMs, GCE maintenance shutdowns and SLURM send (SIGTERM).

A run stopped that way exits 0 (it saved everything) and leaves `<workdir>/STOPPED_ON_PREEMPTION`
(JSON: step, num_train_steps, time), removed when the run resumes; launchers re-run while it
exists: `python -m jaxsr.preemption --workdir=<dir>` exits 3 when it does (see launch/tpu.sh).
"""

import json
import signal
import sys
import threading
import time
from typing import Any, Dict, Optional

from absl import logging
from etils import epath
import jax
from jax.experimental import multihost_utils

MARKER = "STOPPED_ON_PREEMPTION"
MARKER_EXIT = 3  # `python -m jaxsr.preemption` when the marker exists.


class StopSignal:
  """Context manager; `reached(step)` is True at the step where training must save and stop.

  Must be asked at every step, by every process, from the same starting step (JAX's sync
  protocol needs that). Ctrl-C (SIGINT) also stops after the step (`ctrl_c` says so); a second
  Ctrl-C, or in one process a second SIGTERM, interrupts at once (KeyboardInterrupt); further ones,
  while the interrupted run saves, only log.
  """

  def __init__(self):
    self.requested = False
    self.ctrl_c = False
    self.interrupted = False
    self._finishing = False
    self._previous = {}
    self._synced = jax.distributed.is_initialized()

  def _interrupt(self, cause: str) -> None:
    if self.interrupted:
      logging.warning("Already stopping (%s): saving the state reached takes a moment.", cause)
      return
    self.interrupted = True
    raise KeyboardInterrupt(cause)

  def _handle_sigint(self, signum, frame):
    del signum, frame
    if self.ctrl_c or self._finishing:
      self._interrupt("a second Ctrl-C" if self.ctrl_c else "Ctrl-C")
      return
    self.ctrl_c = True
    logging.warning("Ctrl-C: saving and stopping after this step (Ctrl-C again: at once).")

  def _handle_sigterm(self, signum, frame):
    del frame
    if self.requested or self._finishing:
      self._interrupt(f"a second {signal.Signals(signum).name}")
      return
    self.requested = True
    logging.warning("Received signal %d: saving and stopping after this step.", signum)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._handle_sigint)
      # With jax.distributed, the preemption service's own SIGTERM handler must stay in place.
      if not self._synced:
        self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._handle_sigterm)
    return self

  def __exit__(self, *exc):
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    self._previous = {}

  def finishing(self) -> None:
    """From now on Ctrl-C and SIGTERM only log (the final checkpoint is being written)."""
    self._finishing = self.interrupted = True

  def reached(self, step: int) -> bool:
    """Whether to save at `step` and stop (same answer on every process)."""
    if self._synced:
      self.requested = multihost_utils.reached_preemption_sync_point(step)
      if self.requested:
        logging.warning("Preemption notice: every process stops at step %d.", step)
    return self.requested or self.ctrl_c


def write_marker(workdir: str, step: int, num_train_steps: int) -> None:
  """Leaves `<workdir>/STOPPED_ON_PREEMPTION` (local or gs://): training stopped early at `step`."""
  record = {"step": int(step), "num_train_steps": int(num_train_steps),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
  (epath.Path(workdir) / MARKER).write_text(json.dumps(record) + "\n")


def read_marker(workdir: str) -> Optional[Dict[str, Any]]:
  """The marker's record, or None when the last run was not stopped by a preemption notice."""
  path = epath.Path(workdir) / MARKER
  return json.loads(path.read_text()) if path.exists() else None


def clear_marker(workdir: str) -> None:
  """Removes the marker (a resumed run is no longer stopped)."""
  path = epath.Path(workdir) / MARKER
  if path.exists():
    path.unlink()


def main(argv) -> int:
  """`python -m jaxsr.preemption --workdir=<dir>`: exit 3 and one line when the run in <dir> was
  stopped early by a preemption notice (re-run it to resume), else 0."""
  workdirs = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--workdir=")]
  if len(workdirs) != 1 or len(argv) != 2:
    print("usage: python -m jaxsr.preemption --workdir=<dir>", file=sys.stderr)
    return 2
  record = read_marker(workdirs[0])
  if record is None:
    return 0
  print(f"{workdirs[0]}: stopped at step {record['step']} of {record['num_train_steps']} on a "
        f"preemption notice ({record['time']}); re-run the same command to resume.")
  return MARKER_EXIT


if __name__ == "__main__":
  sys.exit(main(sys.argv))
