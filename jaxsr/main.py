"""Entry point: `python -m jaxsr.main --config=configs/<name>.py --workdir=<dir> [--mode=eval]`.

Config fields are overridden on the command line: `--config.batch_size=32`. Mistakes (flags,
config, data, weights, checkpoints) end in one `error: <message>` line (see `jaxsr.cli`).
"""

import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import jax  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxsr import checkpointing  # noqa: E402
from jaxsr import cli  # noqa: E402
from jaxsr import compilation_cache  # noqa: E402
from jaxsr import evaluate  # noqa: E402
from jaxsr import train  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, samples and eval results.")
flags.DEFINE_enum("mode", "train", ["train", "eval"], "Train (and validate) or only evaluate.")
config_flags.DEFINE_config_file("config", None, "A configs/<name>.py file.", lock_config=True)
flags.DEFINE_bool("distributed", False,
                  "Call jax.distributed.initialize() (multi-host). On TPU VMs and SLURM the "
                  "arguments are detected; elsewhere pass the three flags below.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process).")
flags.DEFINE_integer("num_processes", None, "Number of processes (multi-process).")
flags.DEFINE_integer("process_id", None, "This process's index (multi-process).")
flags.mark_flags_as_required(["config", "workdir"])


def initialize_distributed() -> None:
  """Joins the other processes; CPU processes exchange collectives over gloo."""
  # Only affects the CPU backend (GPU/TPU use their own collectives).
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                             num_processes=FLAGS.num_processes, process_id=FLAGS.process_id)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  compilation_cache.enable()  # Before anything compiles.
  if FLAGS.distributed or FLAGS.coordinator_address:
    initialize_distributed()
  logging.info("JAX process %d/%d, devices: %s", jax.process_index(), jax.process_count(),
               jax.devices())
  try:
    if FLAGS.mode == "eval":
      evaluate.evaluate(FLAGS.config, FLAGS.workdir)
    else:
      train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except (train.NonFiniteError, checkpointing.CheckpointSaveError) as e:
    logging.error("%s", e)
    raise SystemExit(1) from None
  except train.Interrupted as e:
    _ignore_further_interrupts()
    cli.fail(f"{e}. Re-run the same command to resume.", 130)
  except KeyboardInterrupt:
    _ignore_further_interrupts()
    cli.fail("interrupted (Ctrl-C) outside the training steps (start-up, evaluation or the "
             "final save); the checkpoints in the workdir are kept. Re-run the same command to "
             "resume.", 130)
  except jax.errors.JaxRuntimeError as e:
    if jax.process_count() == 1:
      raise
    _exit_lost_process(e)
  else:
    compilation_cache.log_summary()


def _ignore_further_interrupts() -> None:
  """Everything is saved: another Ctrl-C while the interpreter shuts down its threads would only
  print a traceback."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)


def _exit_lost_process(error: Exception) -> None:
  """A collective failed in a multi-process run: another process died. Says so and exits now,
  without the shutdown barrier (it would wait for the dead process's heartbeat, then abort)."""
  print(f"error: process {jax.process_index()}: an operation with the other processes failed "
        f"({cli.first_line(error)}). Another process has probably crashed or been killed: see "
        "its log. Saved checkpoints are intact; re-run every process to resume.",
        file=sys.stderr, flush=True)
  logging.flush()
  os._exit(1)  # pylint: disable=protected-access


if __name__ == "__main__":
  cli.run(main)
