#!/usr/bin/env bash
# TPU VM slices, run from your workstation (gcloud installed and logged in). One script with
# subcommands: they share the slice options, and `watch` reuses create, setup and train as they are.
#   launch/tpu.sh COMMAND --name=NAME --zone=ZONE [--project=PROJECT] [options] [--dry-run]
#
#   create  --accelerator-type=TYPE [--version=RUNTIME] [--spot]
#           TYPE e.g. v4-32, v5litepod-16; --spot requests it as a spot queued resource.
#   setup   Copies this repo (tar, without .git and venv) to every worker, pip install -e '.[tpu]'.
#   train   --config=configs/NAME.py --workdir=gs://BUCKET/DIR [--data-dir=gs://BUCKET/tfds]
#           [--config.KEY=VALUE ...]: jaxsr.main --distributed on every worker, its output also
#           appended to ~/jaxsr_train.log there. The same workdir resumes from its latest checkpoint.
#           Fails (exit 3) when a preemption notice stopped training before its last step (the
#           run leaves <workdir>/STOPPED_ON_PREEMPTION until it resumes).
#   eval    As train, with --mode=eval (log ~/jaxsr_eval.log).
#   logs    [--worker=N|all] [--lines=50] [--follow] [--log=train|eval]: tail the log of a worker.
#   ssh     [--worker=N|all] [-- COMMAND ...]: a shell, or COMMAND, on a worker (default 0).
#   delete  Deletes the TPU VM and its queued resource.
#   watch   The create and train options, [--max-retries=10] [--poll=60]: until train succeeds,
#           polls the slice (every --poll seconds while it is being created); when it is
#           preempted, missing or failed, deletes and re-creates it, then setup and train again
#           (train resumes from the checkpoint in the gs:// workdir). Each recovery (a failed or
#           preempted train, a lost slice) counts one retry.
#
# --version defaults by TYPE: v5litepod v2-alpha-tpuv5-lite, v5p v2-alpha-tpuv5, v6e
# v2-alpha-tpuv6e, others tpu-ubuntu2204-base. --dry-run prints the commands and runs nothing.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

OPTIONS="name zone project accelerator-type version config workdir data-dir worker lines log
  max-retries poll"
FLAGS="spot follow"
NAME="" ZONE="" PROJECT="" ACCELERATOR_TYPE="" VERSION="" CONFIG="" WORKDIR="" DATA_DIR=""
SPOT=0 FOLLOW=0 WORKER=0 LINES=50 LOG=train MAX_RETRIES=10 POLL=60
parse_args "$@"
COMMAND=${ARGS[0]:-}
[[ -n $COMMAND ]] || usage_error "missing COMMAND"
if [[ $COMMAND != ssh ]] && ((${#ARGS[@]} > 1)); then
  usage_error "unexpected argument '${ARGS[1]}'"
fi
require NAME ZONE
where=(--zone="$ZONE")
if [[ -n $PROJECT ]]; then where+=(--project="$PROJECT"); fi
tpu=(gcloud compute tpus tpu-vm)
queued=(gcloud compute tpus queued-resources)

on() {  # on WORKER COMMAND: runs the COMMAND string over ssh on worker WORKER (a number or all).
  run "${tpu[@]}" ssh "$NAME" "${where[@]}" --worker="$1" --command="$2"
}

create() {
  require ACCELERATOR_TYPE
  local version=$VERSION
  if [[ -z $version ]]; then
    case $ACCELERATOR_TYPE in
      v5litepod-* | v5e-*) version=v2-alpha-tpuv5-lite ;;
      v5p-*) version=v2-alpha-tpuv5 ;;
      v6e-*) version=v2-alpha-tpuv6e ;;
      *) version="tpu-ubuntu2204-base" ;;
    esac
  fi
  if ((SPOT)); then
    run "${queued[@]}" create "$NAME" --node-id="$NAME" "${where[@]}" \
      --accelerator-type="$ACCELERATOR_TYPE" --runtime-version="$version" --spot
  else
    run "${tpu[@]}" create "$NAME" "${where[@]}" --accelerator-type="$ACCELERATOR_TYPE" \
      --version="$version"
  fi
}

setup() {
  local tarball=${TMPDIR:-/tmp}/jaxsr_src_$NAME.tgz
  run tar czf "$tarball" --exclude=.git --exclude=venv --exclude='*.egg-info' \
    --exclude=__pycache__ -C "$REPO" . || return
  run "${tpu[@]}" scp "$tarball" "$NAME:jaxsr_src.tgz" "${where[@]}" --worker=all || return
  on all "set -e; rm -rf ~/jaxsr; mkdir ~/jaxsr; tar xzf ~/jaxsr_src.tgz -C ~/jaxsr; cd ~/jaxsr; \
python3 -m pip install -q -e \".[tpu]\""
}

jaxsr_on_all() {  # jaxsr_on_all train|eval: jaxsr.main on every worker, output tee'd to a log.
  require CONFIG WORKDIR
  [[ $WORKDIR == gs://* ]] || usage_error "--workdir must be a gs:// path, shared by all workers"
  local args=(python3 -m jaxsr.main --distributed --config="$CONFIG" --workdir="$WORKDIR")
  if [[ $1 == eval ]]; then args+=(--mode=eval); fi
  if [[ -n $DATA_DIR ]]; then args+=(--config.data.data_dir="$DATA_DIR"); fi
  args+=("${CONFIG_ARGS[@]}")
  # jaxsr also exits 0 when a preemption notice (SIGTERM) stopped it early, leaving the marker
  # <workdir>/STOPPED_ON_PREEMPTION: `python3 -m jaxsr.preemption` then exits 3, so that run fails
  # here and `watch` runs it again.
  local check=(python3 -m jaxsr.preemption --workdir="$WORKDIR")
  on all "set -o pipefail; cd ~/jaxsr && $(quote "${args[@]}") 2>&1 | tee -a ~/jaxsr_$1.log && \
$(quote "${check[@]}") 2>&1 | tee -a ~/jaxsr_$1.log"
}

logs() {
  local tail=(tail -n "$LINES")
  if ((FOLLOW)); then tail+=(-F); fi
  on "$WORKER" "$(quote "${tail[@]}") ~/jaxsr_$LOG.log"
}

ssh_worker() {
  if ((${#ARGS[@]} > 1)); then
    on "$WORKER" "${ARGS[*]:1}"
  else
    run "${tpu[@]}" ssh "$NAME" "${where[@]}" --worker="$WORKER"
  fi
}

exists() {  # exists tpu-vm|queued-resources: whether $NAME exists (assumed with --dry-run).
  ((DRY_RUN)) || gcloud compute tpus "$1" describe "$NAME" "${where[@]}" >/dev/null 2>&1
}

delete() {
  if exists tpu-vm; then run "${tpu[@]}" delete "$NAME" "${where[@]}" --quiet || return; fi
  if exists queued-resources; then
    run "${queued[@]}" delete "$NAME" "${where[@]}" --quiet --force
  fi
}

POLLS=0
slice_state() {  # Sets STATE: READY, WAIT (on its way) or GONE (preempted, missing, failed).
  local node queued_state=ACTIVE
  local describe=("${tpu[@]}" describe "$NAME" "${where[@]}" --format='value(state)')
  local describe_queued=("${queued[@]}" describe "$NAME" "${where[@]}"
    --format='value(state.state)')
  if ((DRY_RUN)); then  # Prints the queries; pretends preempted, then ready.
    run "${describe[@]}"
    if ((SPOT)); then run "${describe_queued[@]}"; fi
    node=PREEMPTED
    if ((POLLS > 0)); then node=READY; fi
  else
    node=$("${describe[@]}" 2>/dev/null) || node=MISSING
    if ((SPOT)); then
      queued_state=$("${describe_queued[@]}" 2>/dev/null) || queued_state=MISSING
    fi
  fi
  POLLS=$((POLLS + 1))
  case $queued_state/$node in
    ACTIVE/READY) STATE=READY ;;
    ACTIVE/CREATING | ACTIVE/STARTING | ACTIVE/RESTARTING | ACTIVE/REPAIRING | ACTIVE/REIMAGING | \
      ACTIVE/DELETING | CREATING/* | ACCEPTED/* | WAITING_FOR_RESOURCES/* | PROVISIONING/* | \
      DELETING/*) STATE=WAIT ;;
    *) STATE=GONE ;;
  esac
  if ((SPOT)); then node+=", queued resource $queued_state"; fi
  echo "$PROG: $NAME: node $node -> $STATE" >&2
}

watch() {
  require ACCELERATOR_TYPE CONFIG WORKDIR
  [[ $MAX_RETRIES =~ ^[0-9]+$ && $POLL =~ ^[0-9]+$ ]] ||
    usage_error "--max-retries and --poll take whole numbers"
  local retries=0 setup_done=0 recovering=0
  retry() {  # One per recovery: a failed train (preempted, too) and the re-creation it leads to.
    retries=$((retries + 1))
    ((retries <= MAX_RETRIES)) || die "$1; giving up after $MAX_RETRIES retries"
    echo "$PROG: $1; retry $retries/$MAX_RETRIES" >&2
  }
  while true; do
    slice_state
    case $STATE in
      WAIT) run sleep "$POLL"; continue ;;
      GONE)
        if ((POLLS > 1 && !recovering)); then retry "slice gone"; fi
        recovering=0 setup_done=0
        if ! { delete && create; }; then retry "re-create failed"; run sleep "$POLL"; fi
        continue
        ;;
    esac
    if ((!setup_done)); then
      if ! setup; then retry "setup failed"; run sleep "$POLL"; continue; fi
      setup_done=1
    fi
    if jaxsr_on_all train; then
      echo "$PROG: train finished" >&2
      return 0
    fi
    retry "train failed or stopped early"
    recovering=1
    run sleep "$POLL"
  done
}

case $COMMAND in
  create) create ;;
  setup) setup ;;
  train | eval) jaxsr_on_all "$COMMAND" ;;
  logs) logs ;;
  ssh) ssh_worker ;;
  delete) delete ;;
  watch) watch ;;
  *) usage_error "unknown command '$COMMAND'" ;;
esac
