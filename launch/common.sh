# Sourced by the launch scripts: option parsing, usage errors and `run` (or print, with --dry-run).
#   source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# A script sets OPTIONS (names of --opt=value options) and FLAGS (names of --flag switches), then
# calls `parse_args "$@"`: each --some-opt lands in $SOME_OPT, --config.* overrides in CONFIG_ARGS,
# the rest in ARGS; --dry-run and -h/--help are handled here.
# shellcheck shell=bash

PROG=launch/${0##*/}
DRY_RUN=0
if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 404)); then
  echo "$PROG: needs bash >= 4.4 (macOS: brew install bash)" >&2
  exit 1
fi

usage() {  # The script's header comment, without '# ', #SBATCH and shellcheck lines.
  local line
  {
    read -r line
    while IFS= read -r line && [[ $line == '#'* ]]; do
      [[ $line == '#SBATCH'* || $line == '# shellcheck'* ]] && continue
      line=${line#\#}
      echo "${line# }"
    done
  } <"$0"
}

usage_error() {  # One line on stderr, exit 2.
  echo "$PROG: $* (see $PROG --help)" >&2
  exit 2
}

die() {
  echo "$PROG: $*" >&2
  exit 1
}

quote() {  # Its arguments as shell words, quoted where needed, space-separated.
  local word out=() plain='^[-A-Za-z0-9_./:=@,+%]+$'
  for word in "$@"; do
    if [[ $word =~ $plain ]]; then out+=("$word"); else out+=("'${word//\'/\'\\\'\'}'"); fi
  done
  echo "${out[*]}"
}

run() {  # Runs the command; with --dry-run prints it, quoted, after '+ '.
  if ((DRY_RUN)); then echo "+ $(quote "$@")"; else "$@"; fi
}

_set_opt() {  # _set_opt --some-opt value -> SOME_OPT=value, if some-opt is declared.
  local name=${1#--} known=" ${OPTIONS:-} ${FLAGS:-} "
  [[ ${known//$'\n'/ } == *" $name "* ]] || usage_error "unknown option $1"
  name=${name//-/_}
  printf -v "${name^^}" '%s' "$2"
}

parse_args() {
  ARGS=()
  CONFIG_ARGS=()
  while (($#)); do
    case $1 in
      -h | --help) usage; exit 0 ;;
      --dry-run) DRY_RUN=1 ;;
      --config.*) CONFIG_ARGS+=("$1") ;;
      --) shift; ARGS+=("$@"); break ;;
      --*=*) _set_opt "${1%%=*}" "${1#*=}" ;;
      --*)
        if [[ " ${FLAGS:-} " == *" ${1#--} "* ]]; then
          _set_opt "$1" 1
        else
          [[ $# -gt 1 && $2 != --* ]] || usage_error "$1 needs a value"
          _set_opt "$1" "$2"
          shift
        fi
        ;;
      *) ARGS+=("$1") ;;
    esac
    shift
  done
}

require() {  # require VAR... : a usage error naming the first unset one as --var.
  local var opt
  for var in "$@"; do
    opt=${var,,}
    [[ -n ${!var:-} ]] || usage_error "missing --${opt//_/-}"
  done
}

positional() {  # positional N NAME...: ARGS must be N arguments, named NAME... in the errors.
  local n=$1
  shift
  ((${#ARGS[@]} >= n)) || usage_error "missing ${*:${#ARGS[@]}+1:1}"
  ((${#ARGS[@]} == n)) || usage_error "unexpected argument '${ARGS[n]}'"
}
