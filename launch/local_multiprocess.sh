#!/usr/bin/env bash
# N jaxsr processes on this machine (CPU, gloo collectives): a local rehearsal of multi-host.
#   launch/local_multiprocess.sh [--dry-run] [--mode=eval] N CONFIG WORKDIR [--config.KEY=VALUE ...]
# PORT (default random) is the coordinator's port; JAXSR_PYTHON (default python) the interpreter.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

OPTIONS=mode
MODE=train
parse_args "$@"
positional 3 N CONFIG WORKDIR
N=${ARGS[0]}
[[ $N =~ ^[1-9][0-9]*$ ]] || usage_error "N must be a positive integer, not '$N'"
PORT=${PORT:-$((20000 + RANDOM % 20000))}
pids=()
for ((i = 0; i < N; i++)); do
  cmd=(env JAX_PLATFORMS=cpu "${JAXSR_PYTHON:-python}" -m jaxsr.main --config="${ARGS[1]}"
    --workdir="${ARGS[2]}" --mode="$MODE" --coordinator_address="127.0.0.1:$PORT"
    --num_processes="$N" --process_id="$i" "${CONFIG_ARGS[@]}")
  if ((DRY_RUN)); then
    echo "+ $(quote "${cmd[@]}") &"
  else
    "${cmd[@]}" &
    pids+=($!)
  fi
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
