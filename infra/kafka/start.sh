#!/usr/bin/env bash
# Starts a real single-node Apache Kafka broker (KRaft: broker + controller in one JVM)
# on 127.0.0.1, and waits until it answers. Idempotent: when something already answers on
# the port it only makes sure the jars are in lib/ (tests start private brokers from them).
#
# Environment:
#   KAFKA_PORT             client port (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port (default KAFKA_PORT+1, i.e. 9093)
#   BUNRYU_INFRA_DIR       state root (default infra/.state); Kafka keeps its data,
#                          logs and pid file in $BUNRYU_INFRA_DIR/kafka
#   KAFKA_HEAP_OPTS        JVM heap (default "-Xms256m -Xmx512m")
#   KAFKA_START_TIMEOUT    seconds to wait for the broker (default 90)
#   KAFKA_TOPICS           topics to ensure, "name:partitions" separated by spaces
#                          (default "bunryu.events:4")
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR/.. source=common.sh
source "$SCRIPT_DIR/../common.sh"

HOST=127.0.0.1
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
STATE="$STATE_ROOT/kafka"
LIB="$SCRIPT_DIR/lib"
PID_FILE="$STATE/kafka.pid"
PROPS="$STATE/server.properties"
DATA="$STATE/data"
LOGS="$STATE/logs"
read -r -a HEAP <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
TOPICS="${KAFKA_TOPICS:-bunryu.events:4}"
PATTERN="kafka.Kafka $PROPS"

say() { log kafka "$@"; }

# The jars are ensured even when a broker already answers: tests start private brokers from them.
mkdir -p "$LOGS"
# --- Java and Maven ---------------------------------------------------------------
if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  apt_install openjdk-17-jre-headless maven
fi

# --- jars: fetched from Maven Central into lib/ (refetched when pom.xml changes) ----
POM_SUM="$(sha256sum "$SCRIPT_DIR/pom.xml" | cut -d' ' -f1)"
if [[ "$(cat "$LIB/.complete" 2>/dev/null || true)" != "$POM_SUM" ]]; then
  say "fetching the Kafka jars with Maven (pom.xml -> lib/)"
  tmp="$SCRIPT_DIR/lib.tmp.$$"
  rm -rf "$tmp"
  t0=$SECONDS
  if ! mvn -B -Dstyle.color=never -f "$SCRIPT_DIR/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" >"$LOGS/mvn.log" 2>&1; then
    rm -rf "$tmp"
    say "mvn dependency:copy-dependencies failed; last lines of $LOGS/mvn.log:"
    tail -n 40 "$LOGS/mvn.log" >&2
    exit 1
  fi
  echo "$POM_SUM" >"$tmp/.complete"
  rm -rf "$LIB"
  mv "$tmp" "$LIB"
  say "jars fetched in $((SECONDS - t0))s ($(find "$LIB" -name '*.jar' | wc -l) jars)"
fi

if port_open "$HOST" "$PORT"; then
  say "something already answers on $HOST:$PORT: nothing to do"
  exit 0
fi

mkdir -p "$STATE" "$LOGS"
# One start at a time (up.sh from two terminals, CI and a developer...).
exec 9>"$STATE/start.lock"
flock -w $((TIMEOUT + 120)) 9 || { say "could not take $STATE/start.lock"; exit 1; }
if port_open "$HOST" "$PORT"; then
  say "broker came up meanwhile on $HOST:$PORT"
  exit 0
fi

# kafka_tool SECONDS MAINCLASS ARGS...: runs a Kafka command line tool, bounded in time.
kafka_tool() {
  local secs="$1"; shift
  timeout "$secs" java -Xmx256m -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$SCRIPT_DIR/tools-log4j.properties" \
    -cp "$LIB/*" "$@"
}

# --- a broker of ours may already be starting (pid file) ----------------------------
pid="$(read_pid "$PID_FILE")"
if [[ -n "$pid" ]] && ! pid_alive "$pid" "$PATTERN"; then
  rm -f "$PID_FILE"
  pid=""
fi

if [[ -z "$pid" ]]; then
  # --- server.properties (rewritten on every start; the data dir keeps the state) ---
  cat >"$PROPS" <<EOF
# Written by infra/kafka/start.sh: single-node KRaft broker for development and CI.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
metadata.log.dir=$DATA

num.partitions=4
default.replication.factor=1
auto.create.topics.enable=true
delete.topic.enable=true
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
group.initial.rebalance.delay.ms=0

log.retention.hours=24
log.segment.bytes=67108864
log.retention.check.interval.ms=60000
num.network.threads=3
num.io.threads=4
EOF

  # --- format the log dir once --------------------------------------------------------
  if [[ ! -f "$DATA/meta.properties" ]]; then
    if [[ ! -s "$STATE/cluster.id" ]]; then
      kafka_tool 60 kafka.tools.StorageTool random-uuid | tr -d '[:space:]' >"$STATE/cluster.id"
    fi
    cluster_id="$(cat "$STATE/cluster.id")"
    say "formatting $DATA (cluster id $cluster_id)"
    kafka_tool 60 kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" --ignore-formatted >/dev/null
  fi

  # --- start the broker, detached in its own session ---------------------------------
  say "starting the broker on $HOST:$PORT (controller $HOST:$CONTROLLER_PORT, state $STATE)"
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
    java "${HEAP[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dkafka.logs.dir="$LOGS" -Dlog4j.configuration="file:$SCRIPT_DIR/log4j.properties" \
    -cp "$LIB/*" kafka.Kafka "$PROPS" \
    </dev/null >"$LOGS/broker.out" 2>&1 9>&- &
  for _ in $(seq 50); do [[ -s "$PID_FILE" ]] && break; sleep 0.1; done
  pid="$(read_pid "$PID_FILE")"
else
  say "broker pid $pid (ours) is already starting; waiting for it"
fi

fail() {
  say "$*"
  for f in "$LOGS/broker.out" "$LOGS/server.log"; do
    [[ -s "$f" ]] || continue
    say "--- last lines of $f"
    tail -n 40 "$f" >&2
  done
  if pid_alive "$pid" "$PATTERN"; then
    say "the broker is still running as pid $pid: infra/kafka/stop.sh stops it"
  fi
  exit 1
}

# --- wait until the broker answers a real request (topic list) ------------------------
deadline=$((SECONDS + TIMEOUT))
ready=""
while ((SECONDS < deadline)); do
  pid_alive "$pid" "$PATTERN" || fail "the broker (pid ${pid:-?}) exited during startup"
  if port_open "$HOST" "$PORT" &&
    kafka_tool 30 org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$PORT" --list \
      >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 1
done
[[ -n "$ready" ]] || fail "the broker did not answer on $HOST:$PORT within ${TIMEOUT}s"

# --- topics ---------------------------------------------------------------------------
for spec in $TOPICS; do
  name="${spec%%:*}"
  parts="${spec#*:}"
  [[ "$parts" == "$spec" ]] && parts=4
  if ! out="$(kafka_tool 60 org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$PORT" \
    --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1 2>&1)"; then
    printf '%s\n' "$out" >&2
    fail "could not create topic $name"
  fi
  if grep -q '^Created topic' <<<"$out"; then say "created topic $name ($parts partitions)"; fi
done

# --- create __consumer_offsets now (a FindCoordinator request does), so that the first
# consumer group of a test does not meet "group coordinator not available" ---------------
list_topics() {
  kafka_tool 30 org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$PORT" --list 2>/dev/null
}
if ! list_topics | grep -qx __consumer_offsets; then
  kafka_tool 30 org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
    --bootstrap-server "$HOST:$PORT" --describe --group bunryu-infra-warmup >/dev/null 2>&1 || true
  for _ in $(seq 15); do
    list_topics | grep -qx __consumer_offsets && break
    sleep 1
  done
fi

say "broker ready on $HOST:$PORT (pid $pid) in ${SECONDS}s; topics: $TOPICS"
