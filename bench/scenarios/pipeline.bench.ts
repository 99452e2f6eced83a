/**
 * Issue #6 / SPEC §7 event pipeline: "≥ 50,000 events/s sustained from the gateway's
 * `POST /v1/events` to rows queryable in the metrics store, with Kafka on this machine; consumer
 * lag back to zero within 5 s of load stopping."
 *
 * - pipeline: a fake experiment-service, the real gateway and the real aggregator, each its own
 *   process as deployed (the gateway's bundle, `aggregator/src/server.ts` with chdb), and
 *   autocannon (a third process) posting 500 events per call. Over the embedded log, and over a
 *   fresh Kafka topic when KAFKA_BROKERS answers. Both services get an environment built here, not
 *   the bench's own: a KAFKA_BROKERS inherited by the gateway in the embedded scenario would send
 *   its events to Kafka while the aggregator tails an empty embedded log.
 *   1. Sustained: the load generator offers TARGET × 1.2 (120 calls/s × 500 events) for
 *      LOAD_SECONDS. To show a pipeline sustains a rate it must be offered more than that rate: a
 *      pipeline offered exactly the target can at best deliver the target minus its tail.
 *      - rows queryable per second = events accepted by the gateway ÷ (time of the first call →
 *        time the aggregator has inserted all of them). Target ≥ 50,000. A pipeline that falls
 *        behind stretches the denominator, so the figure shows it.
 *      - consumer lag back to zero = time from the end of the load until every accepted event is
 *        queryable and the aggregator's consumer lag reads 0. Target ≤ 5 s.
 *   2. Flat out, for information: the same without a rate limit (the gateway takes all it can and
 *      spills what the log does not take in time); the same two figures and what the gateway took.
 *   For each, the aggregator's CPU (user + system, all its threads, from /proc/<pid>/stat) per
 *   event, from the start of the load until the lag is back to zero.
 * - ingest: the aggregator alone (in this process): a log filled beforehand, then consumed into a
 *   fresh chdb: its ceiling without the gateway and the load generator competing for the cores,
 *   and its CPU per event (process.cpuUsage, which counts chdb's threads too).
 *
 * Times: the first call is the last poll of the gateway's request counter that still read no call
 * (a lower bound, so the figure errs low); the load ends LOAD_SECONDS after it (autocannon's
 * duration) or when autocannon exits, whichever is first. "Queryable" is the aggregator's count of
 * inserted rows on /metrics, polled every POLL_MS: an insert resolves once ClickHouse has the rows.
 * After the run the aggregator is stopped and its table is counted, which must hold every accepted
 * event.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { EVENTS_TOPIC } from '@bunryu/core';
import { createFileEventLog, createKafkaEventLog, type EventLog } from '@bunryu/event-log';
import { integrationServer } from '@bunryu/platform/testing';
import { load } from '../lib/load.ts';
import { cpuSeconds } from '../lib/proc.ts';
import type { BenchResult } from '../lib/result.ts';
import { serviceArgs } from '../../scripts/services.ts';
import { Ingester } from '../../aggregator/src/ingest/ingester.ts';
import { chdbClient } from '../../aggregator/src/metrics-store/clickhouse-client.ts';
import { ClickHouseMetricsStore } from '../../aggregator/src/metrics-store/clickhouse-metrics-store.ts';
import { silentLogger } from '@bunryu/platform/log';

const LOAD_SECONDS = Number(process.env.BENCH_PIPELINE_SECONDS ?? 10);
const TARGET_EVENTS_PER_SECOND = 50_000;
const EVENTS_PER_CALL = 500;
/** 20% above the target: 120 calls/s × 500 events = 60,000 events/s offered. */
const OFFERED_CALLS_PER_SECOND = Math.round((TARGET_EVENTS_PER_SECOND * 1.2) / EVENTS_PER_CALL);
const CONNECTIONS = 8;
const INGEST_EVENTS = 300_000;
const POLL_MS = 100;
const TOKEN = 'bench-token';
const root = fileURLToPath(new URL('../..', import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => Promise<boolean> | boolean, what: string | (() => Promise<string>), timeoutMs: number, everyMs = 20): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : await what()}`);
    await sleep(everyMs);
  }
  return performance.now();
}

/** CPU seconds (user + system, every thread) a process has used so far. */
function cpuSecondsOf(pid: number): number {
  const seconds = cpuSeconds([pid]);
  if (seconds === null) throw new Error(`cannot read /proc/${pid}/stat`);
  return seconds;
}

// ---------------------------------------------------------------- a stand-in experiment-service

const EXPERIMENT = {
  key: 'bench-exp',
  route: 'recommend',
  layer: 'bench-exp',
  trafficPercent: 100,
  allocation: { start: 0, end: 10_000 },
  salt: '',
  targeting: [],
  variants: [
    { key: 'control', weight: 50, params: { version: '1' } },
    { key: 'treatment', weight: 50, params: { version: '2' } },
  ],
  overrides: {},
  metrics: { primary: 'ctr', guardrails: [] },
  status: 'running',
  version: 1,
  createdAt: '2026-11-01T00:00:00.000Z',
  updatedAt: '2026-11-01T00:00:00.000Z',
};
const SNAPSHOT = JSON.stringify({
  version: 1,
  routes: { recommend: { key: 'recommend', upstream: 'http://127.0.0.1:9', path: '/', defaultParams: {}, timeoutMs: 1000, updatedAt: '2026-11-01T00:00:00.000Z' } },
  experiments: [EXPERIMENT],
  metrics: { ctr: { key: 'ctr', type: 'proportion', event: 'click', builtIn: false } },
  holdout: null,
});

async function experimentService(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401).end();
    if (req.url === '/v1/config') return void res.writeHead(200, { 'content-type': 'application/json', etag: '"1"' }).end(SNAPSHOT);
    if (req.url === '/v1/config/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: snapshot\nid: 1\ndata: ${SNAPSHOT}\n\n`);
      // Heartbeats, as the real service sends: a silent stream is taken for dead and reconnected.
      const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), 5000);
      return void res.once('close', () => clearInterval(heartbeat));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

// ---------------------------------------------------------------- the services, each its own process

/** The bench's environment without anything that configures a bunryu service: each scenario says what it means. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(KAFKA_|BUNRYU_|CLICKHOUSE_|AGGREGATOR_|GATEWAY_|EXPERIMENT_SERVICE_)/.test(key)) continue;
    if (key === 'PORT' || key === 'HOST' || key === 'LOG_LEVEL') continue;
    env[key] = value;
  }
  return env;
}

interface Service {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts a service as it ships, learns its address from its "listening on" line, then passes on its warnings and errors. */
async function startService(service: 'gateway' | 'aggregator', env: Record<string, string>): Promise<Service> {
  const child = spawn(process.execPath, await serviceArgs(service), {
    cwd: root,
    env: { ...baseEnv(), PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (!m) return;
      child.stdout!.off('data', onData);
      child.once('exit', (code, signal) => {
        if (code !== 0 && signal !== 'SIGTERM') process.stderr.write(`${service} exited with ${code ?? signal}\n`);
      });
      let rest = '';
      child.stdout!.on('data', (more: Buffer) => {
        const lines = (rest + more.toString()).split('\n');
        rest = lines.pop()!;
        for (const line of lines) if (/"level":(4|5|6)\d/.test(line)) process.stderr.write(`${service}: ${line}\n`);
      });
      resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the ${service} exited with ${code} before listening: ${out.slice(-2000)}`)));
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return { url, child, stop };
}

/** The samples of the Prometheus text at `url`, summed by metric name (labels dropped). */
async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const name = line.slice(0, line.search(/[{ ]/));
    out.set(name, (out.get(name) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

async function eventCalls(gateway: string): Promise<number> {
  const text = await (await fetch(`${gateway}/metrics`)).text();
  let calls = 0;
  for (const m of text.matchAll(/^bunryu_http_requests_total\{[^}]*route="\/v1\/events"[^}]*\} (\d+)/gm)) calls += Number(m[1]);
  return calls;
}

function eventsBody(): string {
  const now = Date.now();
  const events = Array.from({ length: EVENTS_PER_CALL }, (_, i) => {
    const kind = i % 10;
    const unitId = `bench-u-${i}`;
    if (kind < 6) return { type: 'impression', unitId, route: 'recommend' };
    if (kind < 9) return { type: 'click', unitId, route: 'recommend', value: 1 };
    return { type: 'dwell', unitId, route: 'recommend', value: 12.5, ts: now };
  });
  return JSON.stringify({ events });
}

async function deleteTopics(brokers: string, topics: string[]): Promise<void> {
  const admin = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING }).admin();
  try {
    await admin.connect();
    await admin.deleteTopics({ topics });
  } catch {
    // Leftover topics only cost disk on a development broker.
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

// ---------------------------------------------------------------- scenarios

async function pipeline(name: string, kafka: string | undefined): Promise<BenchResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bunryu-bench-pipeline-'));
  const service = await experimentService();
  // A topic of its own: nothing left by earlier runs, and nothing left for the next ones.
  const topic = kafka ? `bench-pipeline-${randomUUID()}` : EVENTS_TOPIC;
  const env: Record<string, string> = {
    BUNRYU_DATA_DIR: dir,
    BUNRYU_EVENTS_TOPIC: topic,
    EXPERIMENT_SERVICE_URL: service.url,
    EXPERIMENT_SERVICE_TOKEN: TOKEN,
    ...(kafka ? { KAFKA_BROKERS: kafka } : {}),
  };
  let gateway: Service | undefined;
  let aggregator: Service | undefined;
  try {
    gateway = await startService('gateway', env);
    aggregator = await startService('aggregator', { ...env, AGGREGATOR_CONSUMER_GROUP: `bench-${randomUUID()}` });
    const [gw, agg] = [gateway.url, aggregator.url];
    const pid = aggregator.child.pid!;
    await until(async () => (await fetch(`${gw}/readyz`)).ok, 'the gateway to be ready', 30_000, 100);
    await until(async () => (await fetch(`${agg}/readyz`)).ok, 'the aggregator to be ready', 30_000, 100);

    const ingested = async () => (await scrape(agg)).get('bunryu_aggregator_events_ingested_total') ?? 0;
    const state = async () => {
      const [g, a] = await Promise.all([scrape(gw), scrape(agg)]);
      return `gateway published ${g.get('bunryu_gateway_events_published_total')}, queued ${g.get('bunryu_gateway_event_queue_depth')}, spill ${g.get('bunryu_gateway_event_spill_pending')}; aggregator ingested ${a.get('bunryu_aggregator_events_ingested_total')}, lag ${a.get('bunryu_aggregator_consumer_lag')}, failed inserts ${a.get('bunryu_aggregator_insert_failures_total')}`;
    };

    /** Loads the gateway (at `rate` calls/s, or as fast as it goes) and waits for every accepted event to be queryable and the lag to be gone. */
    const measure = async (rate?: number) => {
      const before = await ingested();
      const callsBefore = await eventCalls(gw);
      const cpuBefore = cpuSecondsOf(pid);
      let exited: number | undefined;
      const loading = load({
        url: `${gw}/v1/events`,
        method: 'POST',
        body: eventsBody(),
        headers: { 'content-type': 'application/json' },
        connections: CONNECTIONS,
        seconds: LOAD_SECONDS,
        ...(rate ? { rate } : {}),
      }).finally(() => (exited = performance.now()));
      loading.catch(() => {});
      // 1. The first call: the start of the last poll that still saw none.
      let firstCall = performance.now();
      for (;;) {
        const polled = performance.now();
        if ((await eventCalls(gw)) > callsBefore || exited !== undefined) break;
        firstCall = polled;
        await sleep(5);
      }
      const r = await loading;
      const loadEnd = Math.min(exited!, firstCall + LOAD_SECONDS * 1000);
      if (r.errors > 0) throw new Error(`${r.errors} load errors`);
      const accepted = (r.total - r.non2xx) * EVENTS_PER_CALL;
      // 2. Every accepted event queryable, then the lag at zero (both polled on /metrics).
      let queryable = 0;
      let drained = 0;
      await until(
        async () => {
          const m = await scrape(agg);
          const now = performance.now();
          if (!queryable && (m.get('bunryu_aggregator_events_ingested_total') ?? 0) - before >= accepted) queryable = now;
          if (queryable && m.get('bunryu_aggregator_consumer_lag') === 0) drained = now;
          return drained > 0;
        },
        async () => `${accepted.toLocaleString('en')} accepted events to be queryable and the lag to be zero (${await state()})`,
        180_000,
        POLL_MS,
      );
      const cpu = cpuSecondsOf(pid) - cpuBefore;
      return {
        accepted,
        offered: accepted / ((loadEnd - firstCall) / 1000),
        queryable: accepted / ((queryable - firstCall) / 1000),
        drain: Math.max(0, drained - loadEnd) / 1000,
        cpuMicrosPerEvent: (cpu * 1e6) / accepted,
        note: `${LOAD_SECONDS} s of load${rate ? ` offered at ${(rate * EVENTS_PER_CALL).toLocaleString('en')} events/s` : ', as fast as the gateway takes it'}, ${CONNECTIONS} connections × ${EVENTS_PER_CALL} events per call; ${accepted.toLocaleString('en')} events accepted, ${r.non2xx} calls refused`,
      };
    };

    const sustained = await measure(OFFERED_CALLS_PER_SECOND);
    const flatOut = await measure();
    const total = sustained.accepted + flatOut.accepted;

    // The table itself must hold every accepted event: count it once the aggregator has let go of it.
    await aggregator.stop();
    const store = await ClickHouseMetricsStore.open(chdbClient(join(dir, 'aggregator', 'chdb')));
    const rows = await store.countEvents().finally(() => store.close());
    if (rows < total) throw new Error(`only ${rows} rows for ${total} accepted events`);

    const offered = `offered ${(OFFERED_CALLS_PER_SECOND * EVENTS_PER_CALL).toLocaleString('en')}/s`;
    return [
      { scenario: 'pipeline', metric: `${name}: ${offered} → rows queryable (events/s)`, value: sustained.queryable, unit: 'events/s', target: `>= ${TARGET_EVENTS_PER_SECOND}`, note: sustained.note },
      { scenario: 'pipeline', metric: `${name}: ${offered}, lag back to zero after load stops`, value: sustained.drain, unit: 's', target: '<= 5', note: sustained.note },
      { scenario: 'pipeline', metric: `${name}: ${offered}, aggregator CPU per event`, value: sustained.cpuMicrosPerEvent, unit: 'µs' },
      { scenario: 'pipeline', metric: `${name}: flat out, /v1/events → rows queryable (events/s)`, value: flatOut.queryable, unit: 'events/s', note: flatOut.note },
      { scenario: 'pipeline', metric: `${name}: flat out, gateway accepted (events/s)`, value: flatOut.offered, unit: 'events/s' },
      { scenario: 'pipeline', metric: `${name}: flat out, lag back to zero after load stops`, value: flatOut.drain, unit: 's' },
      { scenario: 'pipeline', metric: `${name}: flat out, aggregator CPU per event`, value: flatOut.cpuMicrosPerEvent, unit: 'µs' },
    ];
  } finally {
    await gateway?.stop();
    await aggregator?.stop();
    await new Promise((resolve) => service.server.close(resolve));
    await rm(dir, { recursive: true, force: true });
    if (kafka) await deleteTopics(kafka, [topic]);
  }
}

/** The aggregator alone: a full log, consumed into a fresh chdb. */
async function ingest(name: string, log: EventLog, dir: string): Promise<BenchResult[]> {
  const producer = log.producer();
  const batch: { key: string; value: string }[] = [];
  for (let i = 0; i < INGEST_EVENTS; i++) {
    const unitId = `bench-u-${i % 50_000}`;
    const event =
      i % 3 === 0
        ? { eventId: randomUUID(), type: 'exposure', ts: 1_763_800_000_000 + i, unitId, route: 'recommend', requestId: randomUUID(), assignments: [{ experiment: 'bench-exp', variant: i % 2 ? 'treatment' : 'control' }], latencyMs: 4.2, status: 200 }
        : { eventId: randomUUID(), type: i % 3 === 1 ? 'impression' : 'click', ts: 1_763_800_000_000 + i, unitId, route: 'recommend', assignments: [{ experiment: 'bench-exp', variant: i % 2 ? 'treatment' : 'control' }] };
    batch.push({ key: unitId, value: JSON.stringify(event) });
    if (batch.length === 5000) await producer.append(batch.splice(0));
  }
  await producer.close();
  const store = await ClickHouseMetricsStore.open(chdbClient(join(dir, 'chdb')));
  const ingester = new Ingester({ consumer: log.consumer({ group: `bench-${randomUUID()}` }), store, logger: silentLogger });
  try {
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await ingester.start();
    const done = await until(() => ingester.stats.ingested >= INGEST_EVENTS, 'the log to be ingested', 300_000);
    const cpu = process.cpuUsage(cpuBefore);
    const note = `${INGEST_EVENTS.toLocaleString('en')} events in the log beforehand`;
    return [
      { scenario: 'pipeline', metric: `${name}: aggregator alone, log → rows queryable (events/s)`, value: INGEST_EVENTS / ((done - started) / 1000), unit: 'events/s', note },
      { scenario: 'pipeline', metric: `${name}: aggregator alone, CPU per event`, value: (cpu.user + cpu.system) / INGEST_EVENTS, unit: 'µs', note },
    ];
  } finally {
    await ingester.stop();
    await store.close();
  }
}

export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const kafka = (await integrationServer('KAFKA_BROKERS', '127.0.0.1:9092')).url;

  // chdb binds one data directory per process at a time: each scenario in this process opens its
  // own and closes it before the next (the pipeline's aggregator runs in a process of its own).
  const logs: [string, (dir: string) => EventLog, string?][] = [
    ['embedded log', (dir) => createFileEventLog({ dir: join(dir, 'events'), topic: EVENTS_TOPIC, maxBatchRecords: 50_000, maxBatchBytes: 32 << 20 })],
  ];
  if (kafka) {
    const topic = `bench-ingest-${randomUUID()}`;
    logs.push(['kafka', () => createKafkaEventLog({ brokers: kafka, topic }), topic]);
  }
  for (const [name, open, topic] of logs) {
    const dir = await mkdtemp(join(tmpdir(), 'bunryu-bench-ingest-'));
    try {
      results.push(...(await ingest(name, open(dir), dir)));
    } finally {
      await rm(dir, { recursive: true, force: true });
      if (kafka && topic) await deleteTopics(kafka, [topic]);
    }
  }
  results.push(...(await pipeline('embedded log', undefined)));
  if (kafka) results.push(...(await pipeline('kafka', kafka)));
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await run()) process.stdout.write(`${r.metric.padEnd(64)} ${r.value.toFixed(r.unit === 's' ? 2 : 0).padStart(10)} ${r.unit}${r.note ? `  (${r.note})` : ''}\n`);
}
