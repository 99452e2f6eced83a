#!/usr/bin/env bash
# Makes sure a Redis server answers on 127.0.0.1:$REDIS_PORT (default 6379).
# Idempotent: if one already answers PONG (whoever started it), exits 0 and leaves it alone.
# Otherwise installs Debian's redis-server if missing (root, apt-get) and starts one
# without persistence, its pid file and log in $BUNRYU_INFRA_DIR/redis (default
# infra/.state/redis). stop.sh stops only that one.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR/.. source=common.sh
source "$SCRIPT_DIR/../common.sh"

HOST=127.0.0.1
PORT="${REDIS_PORT:-6379}"
STATE="$STATE_ROOT/redis"
PID_FILE="$STATE/redis.pid"
TIMEOUT="${REDIS_START_TIMEOUT:-30}"

say() { log redis "$@"; }

# ping: true if Redis answers PONG (redis-cli if present, else a raw RESP PING).
ping() {
  if command -v redis-cli >/dev/null; then
    [[ "$(timeout 3 redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null)" == PONG ]]
  else
    timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$PORT && printf 'PING\r\n' >&3 &&
      IFS= read -r line <&3 && [[ \"\$line\" == +PONG* ]]" 2>/dev/null
  fi
}

if ping; then
  say "Redis already answers on $HOST:$PORT: nothing to do"
  exit 0
fi

if ! command -v redis-server >/dev/null; then
  apt_install redis-server
  # the package may have started its own service
  if ping; then
    say "Redis answers on $HOST:$PORT after the install"
    exit 0
  fi
fi

mkdir -p "$STATE"
if port_open "$HOST" "$PORT"; then
  say "port $HOST:$PORT is taken by something that does not answer PING"
  exit 1
fi

say "starting redis-server on $HOST:$PORT (state $STATE)"
rm -f "$PID_FILE"
redis-server --daemonize yes --bind "$HOST" --port "$PORT" --save "" --appendonly no \
  --dir "$STATE" --pidfile "$PID_FILE" --logfile "$STATE/redis.log" >&2

for ((i = 0; i < TIMEOUT * 10; i++)); do
  if ping; then
    say "Redis ready on $HOST:$PORT (pid $(read_pid "$PID_FILE"))"
    exit 0
  fi
  sleep 0.1
done
say "Redis did not answer on $HOST:$PORT within ${TIMEOUT}s"
[[ -f "$STATE/redis.log" ]] && tail -n 30 "$STATE/redis.log" >&2
exit 1
