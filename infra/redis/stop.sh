#!/usr/bin/env bash
# Stops the Redis that infra/redis/start.sh started (by its pid file). A Redis started
# any other way (a system service, another project) is never touched. Idempotent.
#   --clean   also deletes its state dir
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR/.. source=common.sh
source "$SCRIPT_DIR/../common.sh"

clean=""
for arg in "$@"; do
  case "$arg" in
    --clean) clean=1 ;;
    -h | --help) sed -n '2,4p' "$0"; exit 0 ;;
    *) log redis "unknown argument: $arg"; exit 2 ;;
  esac
done

STATE="$STATE_ROOT/redis"
PID_FILE="$STATE/redis.pid"

pid="$(read_pid "$PID_FILE")"
if [[ -n "$pid" ]] && pid_alive "$pid" redis-server; then
  stop_pid redis "$pid" redis-server 15
else
  log redis "no Redis of ours is running"
fi
rm -f "$PID_FILE"

if [[ -n "$clean" && -d "$STATE" ]]; then
  log redis "deleting $STATE"
  rm -rf "$STATE"
fi
