/**
 * Issue #6 / SPEC §7 event pipeline: events per second from the gateway's `POST /v1/events` to
 * rows queryable in the metrics store, and how long the consumer lag takes to get back to zero
 * once the load stops (targets ≥ 50,000 events/s and ≤ 5 s).
 *
 * - pipeline: a fake experiment-service, the real gateway (child process), the real aggregator
 *   (this process: compose() with chdb), autocannon (child process) posting 500 events per call
 *   for LOAD_SECONDS, first at the target rate (does it keep up; how soon is the lag gone), then
 *   flat out. Over the embedded log, and over Kafka when KAFKA_BROKERS answers.
 * - ingest: the aggregator alone: a log filled beforehand, then consumed into chdb (its ceiling
 *   without the gateway and the load generator competing for the cores).
 *
 * "Queryable" is the ingester's count of inserted rows: an insert resolves once ClickHouse has
 * the rows (the final count is checked against the table).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVENTS_TOPIC } from '@bunryu/core';
import { createFileEventLog, createKafkaEventLog, type EventLog } from '@bunryu/event-log';
import { integrationServer } from '@bunryu/platform/testing';
import { load } from '../../bench/lib/load.ts';
import type { BenchResult } from '../../bench/lib/result.ts';
import { compose, type Deps } from '../src/compose.ts';
import { ConfigSchema } from '../src/config.ts';
import { Ingester } from '../src/ingest/ingester.ts';
import { chdbClient } from '../src/metrics-store/clickhouse-client.ts';
import { ClickHouseMetricsStore } from '../src/metrics-store/clickhouse-metrics-store.ts';

const LOAD_SECONDS = Number(process.env.BENCH_PIPELINE_SECONDS ?? 10);
const TARGET_EVENTS_PER_SECOND = 50_000;
const CONNECTIONS = 8;
const EVENTS_PER_CALL = 500;
const INGEST_EVENTS = 300_000;
const TOKEN = 'bench-token';
const root = fileURLToPath(new URL('../..', import.meta.url));

const silent = { info() {}, warn() {}, error() {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs: number, everyMs = 20): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
  return performance.now();
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
      return void res.write(`event: snapshot\nid: 1\ndata: ${SNAPSHOT}\n\n`);
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

// ---------------------------------------------------------------- the gateway, as its own process

async function startGateway(env: Record<string, string>): Promise<{ url: string; child: ChildProcess; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'gateway/src/server.ts')], {
    cwd: root,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (!m) return;
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the gateway exited with ${code} before listening: ${out.slice(-2000)}`)));
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return { url, child, stop };
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

// ---------------------------------------------------------------- scenarios

async function pipeline(name: string, kafka: string | undefined): Promise<BenchResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bunryu-bench-pipeline-'));
  const service = await experimentService();
  const env: Record<string, string> = {
    BUNRYU_DATA_DIR: dir,
    EXPERIMENT_SERVICE_URL: service.url,
    EXPERIMENT_SERVICE_TOKEN: TOKEN,
    ...(kafka ? { KAFKA_BROKERS: kafka } : {}),
  };
  const config = ConfigSchema.parse({ ...env, LOG_LEVEL: 'silent', AGGREGATOR_CONSUMER_GROUP: `bench-${randomUUID()}` });
  let deps: Deps | undefined;
  const gateway = await startGateway(env);
  try {
    deps = await compose(config);
    const { ingester } = deps;
    await until(async () => (await fetch(`${gateway.url}/readyz`)).ok, 'the gateway to be ready', 30_000, 100);
    // A Kafka topic shared with earlier runs: start from a drained log and count from there.
    await until(async () => (await ingester.lag()) === 0, 'the backlog to drain', 120_000, 100);

    /** Loads the gateway (at `rate` calls/s, or as fast as it goes) and waits for every accepted event to be queryable. */
    const measure = async (rate?: number) => {
      const before = ingester.stats.ingested;
      const started = performance.now();
      const r = await load({
        url: `${gateway.url}/v1/events`,
        method: 'POST',
        body: eventsBody(),
        headers: { 'content-type': 'application/json' },
        connections: CONNECTIONS,
        seconds: LOAD_SECONDS,
        ...(rate ? { rate } : {}),
      });
      const stopped = performance.now();
      if (r.errors > 0) throw new Error(`${r.errors} load errors`);
      const accepted = (r.total - r.non2xx) * EVENTS_PER_CALL;
      const queryable = await until(() => ingester.stats.ingested - before >= accepted, 'every accepted event to be queryable', 180_000);
      const drained = await until(async () => (await ingester.lag()) === 0, 'the consumer lag to reach zero', 180_000, 50);
      return {
        accepted,
        offered: accepted / ((stopped - started) / 1000),
        queryable: accepted / ((queryable - started) / 1000),
        drain: (Math.max(queryable, drained) - stopped) / 1000,
        note: `${LOAD_SECONDS} s of load${rate ? ` at ${rate * EVENTS_PER_CALL} events/s` : ', as fast as the gateway takes it'}, ${CONNECTIONS} connections × ${EVENTS_PER_CALL} events per call; ${accepted.toLocaleString('en')} events accepted, ${r.non2xx} calls refused`,
      };
    };

    // At the rate SPEC §7 asks for: does the pipeline keep up, and how soon is the lag gone?
    const atTarget = await measure(TARGET_EVENTS_PER_SECOND / EVENTS_PER_CALL);
    // Flat out: the most the pipeline delivers when the gateway takes all it can.
    const flatOut = await measure();
    const rows = await deps.store.countEvents();
    if (rows < atTarget.accepted + flatOut.accepted) throw new Error(`only ${rows} rows for ${atTarget.accepted + flatOut.accepted} accepted events`);
    return [
      { scenario: 'pipeline', metric: `${name}: offered ${TARGET_EVENTS_PER_SECOND.toLocaleString('en')}/s → rows queryable (events/s)`, value: atTarget.queryable, unit: 'events/s', target: `>= ${TARGET_EVENTS_PER_SECOND}`, note: atTarget.note },
      { scenario: 'pipeline', metric: `${name}: consumer lag back to zero after load stops`, value: atTarget.drain, unit: 's', target: '<= 5', note: atTarget.note },
      { scenario: 'pipeline', metric: `${name}: flat out, /v1/events → rows queryable (events/s)`, value: flatOut.queryable, unit: 'events/s', note: flatOut.note },
      { scenario: 'pipeline', metric: `${name}: flat out, gateway accepted (events/s)`, value: flatOut.offered, unit: 'events/s' },
      { scenario: 'pipeline', metric: `${name}: flat out, lag back to zero after load stops`, value: flatOut.drain, unit: 's' },
    ];
  } finally {
    await gateway.stop();
    await deps?.close();
    await new Promise((resolve) => service.server.close(resolve));
    await rm(dir, { recursive: true, force: true });
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
  const ingester = new Ingester({ consumer: log.consumer({ group: `bench-${randomUUID()}` }), store, logger: silent });
  try {
    const started = performance.now();
    await ingester.start();
    const done = await until(() => ingester.stats.ingested >= INGEST_EVENTS, 'the log to be ingested', 300_000);
    return [{ scenario: 'pipeline', metric: `${name}: aggregator alone, log → rows queryable (events/s)`, value: INGEST_EVENTS / ((done - started) / 1000), unit: 'events/s', note: `${INGEST_EVENTS.toLocaleString('en')} events in the log beforehand` }];
  } finally {
    await ingester.stop();
    await store.close();
  }
}

export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const kafka = (await integrationServer('KAFKA_BROKERS', '127.0.0.1:9092')).url;

  // chdb binds one data directory per process at a time: each scenario opens its own and closes it.
  const logs: [string, (dir: string) => EventLog][] = [
    ['embedded log', (dir) => createFileEventLog({ dir: join(dir, 'events'), topic: EVENTS_TOPIC, maxBatchRecords: 50_000, maxBatchBytes: 32 << 20 })],
  ];
  if (kafka) logs.push(['kafka', () => createKafkaEventLog({ brokers: kafka, topic: `bench-ingest-${randomUUID()}` })]);
  for (const [name, open] of logs) {
    const dir = await mkdtemp(join(tmpdir(), 'bunryu-bench-ingest-'));
    try {
      results.push(...(await ingest(name, open(dir), dir)));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  results.push(...(await pipeline('embedded log', undefined)));
  if (kafka) results.push(...(await pipeline('kafka', kafka)));
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await run()) process.stdout.write(`${r.metric.padEnd(64)} ${r.value.toFixed(r.unit === 's' ? 2 : 0).padStart(10)} ${r.unit}${r.note ? `  (${r.note})` : ''}\n`);
}
