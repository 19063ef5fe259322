#!/usr/bin/env bash
# N jaxsr processes on this machine (CPU, gloo collectives): a local rehearsal of multi-host.
#   launch/local_multiprocess.sh 2 configs/quickstart.py /tmp/jaxsr_mp [--config.key=value ...]
set -euo pipefail
N=${1:?number of processes}; CONFIG=${2:?config}; WORKDIR=${3:?workdir}; shift 3
PORT=${PORT:-$((20000 + RANDOM % 20000))}
pids=()
for ((i = 0; i < N; i++)); do
  JAX_PLATFORMS=cpu python -m jaxsr.main --config="$CONFIG" --workdir="$WORKDIR" \
    --coordinator_address="127.0.0.1:$PORT" --num_processes="$N" --process_id="$i" "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
