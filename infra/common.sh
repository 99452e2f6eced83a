# shellcheck shell=bash
# Helpers sourced by infra/*/start.sh and stop.sh. Not meant to be run directly.

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Root of all runtime state (data, logs, pid files). Kafka uses $STATE_ROOT/kafka,
# Redis $STATE_ROOT/redis.
STATE_ROOT="${BUNRYU_INFRA_DIR:-$INFRA_DIR/.state}"
case "$STATE_ROOT" in /*) ;; *) STATE_ROOT="$PWD/$STATE_ROOT" ;; esac

# log COMPONENT MESSAGE...: progress goes to stderr so that stdout stays clean
# for the KEY=value lines printed by up.sh.
log() {
  local who="$1"; shift
  printf '[%s] %s\n' "$who" "$*" >&2
}

# port_open HOST PORT: true if a TCP connection can be opened.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# pid_alive PID [PATTERN]: true if PID runs and (if given) its command line matches PATTERN,
# so that a recycled PID is never taken for ours.
pid_alive() {
  local pid="$1" pattern="${2:-}"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -n "$pattern" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern" || return 1
  fi
  # a zombie is not alive
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]]
}

# read_pid FILE: prints the PID stored in FILE (empty if none).
read_pid() {
  if [[ -f "$1" ]]; then tr -dc '0-9' <"$1"; fi
}

# stop_pid WHO PID PATTERN [GRACE_SECONDS]: SIGTERM, wait, then SIGKILL.
stop_pid() {
  local who="$1" pid="$2" pattern="$3" grace="${4:-30}" i
  pid_alive "$pid" "$pattern" || return 0
  log "$who" "stopping pid $pid (SIGTERM, up to ${grace}s)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    pid_alive "$pid" "$pattern" || { log "$who" "stopped"; return 0; }
    sleep 0.1
  done
  log "$who" "still running after ${grace}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" "$pattern" || return 0
    sleep 0.1
  done
  log "$who" "pid $pid did not die"
  return 1
}

# apt_install PACKAGE...: installs Debian packages (root only; no sudo).
apt_install() {
  if [[ "$(id -u)" != 0 ]]; then
    log infra "missing $*: not root, install it yourself (apt-get install $*)"
    return 1
  fi
  command -v apt-get >/dev/null || { log infra "missing $* and no apt-get"; return 1; }
  log infra "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "$@" >&2
}
