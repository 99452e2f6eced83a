#!/usr/bin/env bash
# Starts (or finds already running) Redis and a single-node Kafka broker on 127.0.0.1,
# then prints, on stdout, the connection settings:
#   REDIS_URL=redis://127.0.0.1:6379
#   KAFKA_BROKERS=127.0.0.1:9092
# Progress goes to stderr, so `set -a; eval "$(infra/up.sh)"; set +a` exports them.
# Ports: REDIS_PORT (6379), KAFKA_PORT (9092). State: BUNRYU_INFRA_DIR (infra/.state).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

"$SCRIPT_DIR/redis/start.sh"
"$SCRIPT_DIR/kafka/start.sh"

echo "REDIS_URL=redis://127.0.0.1:${REDIS_PORT:-6379}"
echo "KAFKA_BROKERS=127.0.0.1:${KAFKA_PORT:-9092}"
