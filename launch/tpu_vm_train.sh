#!/usr/bin/env bash
# Train on every host of a TPU VM slice (run from your workstation; gcloud configured).
#   launch/tpu_vm_train.sh <tpu-name> <zone> configs/rrdbnet_psnr_x4.py gs://bucket/workdir [--config.key=value ...]
# The repo is copied to each host, installed with the TPU extra, and started with --distributed
# (jax.distributed.initialize() detects the slice). The workdir should be a GCS path shared by all
# hosts; tfds data_dir likewise (--config.data.data_dir=gs://bucket/tensorflow_datasets).
set -euo pipefail
TPU=${1:?tpu name}; ZONE=${2:?zone}; CONFIG=${3:?config}; WORKDIR=${4:?workdir}; shift 4
cd "$(dirname "$0")/.."
tar czf /tmp/jaxsr_src.tgz --exclude=.git .
gcloud compute tpus tpu-vm scp /tmp/jaxsr_src.tgz "$TPU":~/ --zone="$ZONE" --worker=all
gcloud compute tpus tpu-vm ssh "$TPU" --zone="$ZONE" --worker=all --command="
  set -e; mkdir -p ~/jaxsr && tar xzf ~/jaxsr_src.tgz -C ~/jaxsr && cd ~/jaxsr &&
  pip install -q -e '.[tpu]' &&
  python -m jaxsr.main --distributed --config=$CONFIG --workdir=$WORKDIR $*"
