#!/usr/bin/env bash
# Train on all GPUs of this host (one process; the batch is split over a `data` mesh axis).
#   launch/gpu_train.sh configs/rrdbnet_psnr_x4.py /data/runs/rrdb [--config.key=value ...]
# Install once with: pip install -e '.[gpu]'
set -euo pipefail
CONFIG=${1:?config}; WORKDIR=${2:?workdir}; shift 2
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
exec python -m jaxsr.main --config="$CONFIG" --workdir="$WORKDIR" "$@"
