#!/usr/bin/env bash
#SBATCH --job-name=jaxsr
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
#SBATCH --signal=TERM@120
#SBATCH --output=slurm-%j.out
# Multi-node GPU training under SLURM: one jaxsr process per node drives all its GPUs, and
# --distributed (jax.distributed.initialize()) finds the coordinator and ranks in the SLURM job.
#   sbatch [--nodes=4 --gpus-per-node=8 ...] launch/slurm_train.sh [--mode=eval] CONFIG WORKDIR \
#     [--config.KEY=VALUE ...]
#   launch/slurm_train.sh --dry-run CONFIG WORKDIR [...]   prints the srun command (anywhere)
# Submit from the repo root with the environment of `pip install -e '.[gpu]'` active (sbatch passes
# it on); sbatch options on the command line override the #SBATCH lines above. WORKDIR and
# data.data_dir must be on storage every node sees (shared file system or gs://).
# --signal=TERM@120: SIGTERM two minutes before the time limit; jaxsr saves and stops, and
# submitting again with the same WORKDIR resumes.
set -euo pipefail
# sbatch runs a copy of this file: the repo is where it was submitted from.
if [[ -n ${SLURM_JOB_ID:-} ]]; then
  cd "$SLURM_SUBMIT_DIR"
  [[ -f launch/common.sh ]] || { echo "slurm_train.sh: submit it from the jaxsr repo root" >&2; exit 2; }
else
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
fi
# shellcheck source-path=SCRIPTDIR source=common.sh
source launch/common.sh

OPTIONS=mode
MODE=train
parse_args "$@"
positional 2 CONFIG WORKDIR
[[ -n ${SLURM_JOB_ID:-} ]] || ((DRY_RUN)) ||
  usage_error "not in a SLURM job: submit it with sbatch (or print the command with --dry-run)"
run srun --kill-on-bad-exit=1 \
  env XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}" \
  "${JAXSR_PYTHON:-python}" -m jaxsr.main --distributed --config="${ARGS[0]}" --workdir="${ARGS[1]}" \
  --mode="$MODE" "${CONFIG_ARGS[@]}"
