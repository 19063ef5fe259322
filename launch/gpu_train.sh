#!/usr/bin/env bash
# Train (or evaluate) on all GPUs of this host: one process, the batch split over a `data` mesh axis.
#   launch/gpu_train.sh [--dry-run] [--mode=eval] CONFIG WORKDIR [--config.KEY=VALUE ...]
# Install once with: pip install -e '.[gpu]'. XLA_PYTHON_CLIENT_MEM_FRACTION defaults to 0.9;
# JAXSR_PYTHON (default python) is the interpreter.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

OPTIONS=mode
MODE=train
parse_args "$@"
positional 2 CONFIG WORKDIR
run env XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}" \
  "${JAXSR_PYTHON:-python}" -m jaxsr.main --config="${ARGS[0]}" --workdir="${ARGS[1]}" --mode="$MODE" \
  "${CONFIG_ARGS[@]}"
