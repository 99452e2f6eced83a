#!/usr/bin/env bash
# Stops the Kafka broker that infra/kafka/start.sh started (by the PID in its pid file;
# a broker started some other way is never touched). Idempotent.
#   --clean   also deletes the broker's state dir (data, logs, cluster id)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR/.. source=common.sh
source "$SCRIPT_DIR/../common.sh"

clean=""
for arg in "$@"; do
  case "$arg" in
    --clean) clean=1 ;;
    -h | --help) sed -n '2,4p' "$0"; exit 0 ;;
    *) log kafka "unknown argument: $arg"; exit 2 ;;
  esac
done

STATE="$STATE_ROOT/kafka"
PID_FILE="$STATE/kafka.pid"
PATTERN="kafka.Kafka $STATE/server.properties"

pid="$(read_pid "$PID_FILE")"
if [[ -n "$pid" ]] && pid_alive "$pid" "$PATTERN"; then
  # a broker flushes its logs and shuts the controller down cleanly on SIGTERM
  stop_pid kafka "$pid" "$PATTERN" 60
else
  log kafka "no broker of ours is running"
fi
rm -f "$PID_FILE"

if [[ -n "$clean" && -d "$STATE" ]]; then
  log kafka "deleting $STATE"
  rm -rf "$STATE"
fi
