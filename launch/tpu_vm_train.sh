#!/usr/bin/env bash
# Setup and train on an existing TPU VM slice in one go: `launch/tpu.sh setup`, then `train`.
#   launch/tpu_vm_train.sh [--dry-run] TPU_NAME ZONE CONFIG gs://BUCKET/WORKDIR \
#     [--config.KEY=VALUE ...]
# Pass the tfds data_dir as --config.data.data_dir=gs://BUCKET/tensorflow_datasets.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_args "$@"
positional 4 TPU_NAME ZONE CONFIG WORKDIR
tpu=("$(dirname "${BASH_SOURCE[0]}")/tpu.sh")
slice=(--name="${ARGS[0]}" --zone="${ARGS[1]}")
if ((DRY_RUN)); then slice+=(--dry-run); fi
"${tpu[@]}" setup "${slice[@]}"
"${tpu[@]}" train "${slice[@]}" --config="${ARGS[2]}" --workdir="${ARGS[3]}" "${CONFIG_ARGS[@]}"
