#!/usr/bin/env bash
# Stops what infra/up.sh started: the Kafka broker and Redis that the infra scripts
# launched themselves (by their pid files). A Redis or Kafka that was already running
# before is left alone.
#   --clean   also deletes their state (infra/.state or $BUNRYU_INFRA_DIR)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

rc=0
"$SCRIPT_DIR/kafka/stop.sh" "$@" || rc=$?
"$SCRIPT_DIR/redis/stop.sh" "$@" || rc=$?
exit "$rc"
