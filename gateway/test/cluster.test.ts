/**
 * The gateway as it ships (its bundle) with GATEWAY_WORKERS=2: a primary holding the event publisher
 * and two workers sharing the port. Requests spread over both workers, /metrics adds them up, a
 * killed worker is replaced, and every exposure and event reaches the embedded log exactly once.
 * Forked by another program's cluster primary, the same bundle runs as a gateway of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGateway } from '../build.ts';
import { EVENTS_TOPIC, type Event } from '@bunryu/core';
import { createFileEventLog, type ConsumedRecord } from '@bunryu/event-log';
import { startFakeExperimentService, type FakeExperimentService } from './support/fake-experiment-service.ts';
import { tempDir, until } from './support/gateway.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';
import { spilledEvents } from './support/spilled.ts';
import { startUpstream, type TestUpstream } from './support/upstream.ts';


/** One request on a connection of its own, so the cluster hands it to either worker. */
function call(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Pids of the processes whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function metric(text: string, line: RegExp): number {
  return text
    .split('\n')
    .filter((l) => line.test(l))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

interface GatewayProcess {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
}

/**
 * Starts `node <args>` as a gateway on the embedded log under `dataDir`, on a free port, and waits
 * for its "listening on" line (a worker's, in a cluster).
 */
async function spawnGateway(args: string[], dataDir: string, experimentService: string, env: Record<string, string>): Promise<GatewayProcess> {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', BUNRYU_DATA_DIR: dataDir, EXPERIMENT_SERVICE_URL: experimentService, KAFKA_BROKERS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let out = '';
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`the gateway exited with ${code}: ${out}`)));
  });
  return { child, url, exited };
}

/** Every event in the embedded log under `dataDir`, read to the end by a group of its own. */
async function loggedEvents(dataDir: string, group: string): Promise<Event[]> {
  const consumer = createFileEventLog({ dir: join(dataDir, 'events'), topic: EVENTS_TOPIC, pollIntervalMs: 10 }).consumer({ group });
  const records: ConsumedRecord[] = [];
  await consumer.run({ eachBatch: async (batch) => void records.push(...batch) });
  await until(async () => (await consumer.lag()) === 0 && records.length > 0, 10_000, 'the log read');
  await consumer.close();
  return records.map((r) => JSON.parse(r.value) as Event);
}

describe.runIf(process.platform === 'linux')('gateway cluster (GATEWAY_WORKERS=2)', () => {
  let upstream: TestUpstream;
  let es: FakeExperimentService;
  let dataDir: string;
  let gateway: ChildProcess;
  let url: string;
  let exited: Promise<number | null>;

  beforeAll(async () => {
    upstream = await startUpstream();
    es = await startFakeExperimentService(snapshot(1, [route('recommend', upstream.url)], [experiment('exp-a', 'recommend'), experiment('exp-b', 'recommend', { layer: 'other' })]));
    dataDir = await tempDir('bunryu-gateway-cluster-');
    // As it ships: the bundle, run by plain node.
    ({ child: gateway, url, exited } = await spawnGateway([await buildGateway()], dataDir, es.url, { GATEWAY_WORKERS: '2' }));
    await until(async () => (await call(`${url}/readyz`)).status === 200 && childrenOf(gateway.pid!).length === 2, 45_000, 'both workers ready');
  }, 60_000);

  afterAll(async () => {
    if (gateway.exitCode === null) gateway.kill('SIGKILL');
    await es?.close();
    await upstream?.close();
  });

  const proxied = async (unit: string) => {
    const res = await call(`${url}/v1/routes/recommend/predict`, { headers: { 'x-unit-id': unit } });
    expect(res.status).toBe(200);
    expect(String(res.headers['x-ab-assignments'])).toMatch(/^exp-a=(control|treatment),exp-b=(control|treatment)$/);
  };

  it('serves from both workers, sums their metrics, replaces a killed worker, and logs every event exactly once', async () => {
    for (let i = 0; i < 40; i++) await proxied(`unit-${i}`);
    const events = await call(`${url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events: Array.from({ length: 10 }, (_, i) => ({ type: 'click', unitId: `unit-${i}`, route: 'recommend', value: 1 })) }),
    });
    expect(JSON.parse(events.body).accepted).toBe(10);

    // /metrics, answered by either worker, counts the requests of both, and the publisher's (in the primary).
    const text = (await call(`${url}/metrics`)).body;
    expect(metric(text, /^bunryu_gateway_requests_total\{.*route="recommend".*status="200"/)).toBe(40);
    expect(metric(text, /^bunryu_gateway_variant_requests_total\{.*experiment="exp-a"/)).toBe(40);
    expect(text).toMatch(/^bunryu_gateway_event_queue_depth/m);
    expect(metric(text, /^bunryu_gateway_config_version\{/)).toBe(1);

    // The link hands events over every few ms: once the primary has published them all, a worker may die.
    await until(async () => metric((await call(`${url}/metrics`)).body, /^bunryu_gateway_events_published_total\{/) === 50, 10_000, '50 events published');
    // Everything is with the primary: the workers count nothing as still being handed over.
    const handed = (await call(`${url}/metrics`)).body;
    expect(handed).toMatch(/^bunryu_gateway_event_handover_pending/m);
    expect(metric(handed, /^bunryu_gateway_event_handover_pending/)).toBe(0);
    const [victim] = childrenOf(gateway.pid!);
    process.kill(victim!, 'SIGKILL');
    await until(() => {
      const now = childrenOf(gateway.pid!);
      return now.length === 2 && !now.includes(victim!);
    }, 20_000, 'a replacement worker');
    await until(async () => (await call(`${url}/readyz`).catch(() => ({ status: 0 }))).status === 200, 20_000, 'ready again');
    for (let i = 40; i < 80; i++) await proxied(`unit-${i}`);

    gateway.kill('SIGTERM');
    expect(await exited).toBe(0);

    const logged = await loggedEvents(dataDir, 'cluster-test');
    const exposures = logged.filter((e) => e.type === 'exposure');
    expect(exposures).toHaveLength(80);
    expect(new Set(exposures.map((e) => e.unitId)).size).toBe(80);
    expect(logged.filter((e) => e.type === 'click')).toHaveLength(10);
    expect(new Set(logged.map((e) => e.eventId)).size).toBe(90);
  }, 90_000);
});

describe.runIf(process.platform === 'linux')('gateway cluster during an event-log outage', () => {
  it('answers a worker\'s requests only once the primary has their events on disk: a SIGKILL then loses none', async () => {
    const upstream = await startUpstream();
    const es = await startFakeExperimentService(snapshot(1, [route('recommend', upstream.url)], [experiment('exp-a', 'recommend')]));
    const dataDir = await tempDir('bunryu-gateway-cluster-outage-');
    // A broker that takes connections and never answers, as a stopped or unreachable one: every
    // append hangs until the Kafka client gives up, the first one and then each replay of the spill.
    const broker = createServer((socket) => socket.on('data', () => {}));
    await new Promise<void>((resolve) => broker.listen(0, '127.0.0.1', resolve));
    const started = await spawnGateway([await buildGateway()], dataDir, es.url, { GATEWAY_WORKERS: '2', KAFKA_BROKERS: `127.0.0.1:${(broker.address() as AddressInfo).port}` });
    const { child: gateway, url } = started;
    try {
      await until(async () => (await call(`${url}/readyz`)).status === 200 && childrenOf(gateway.pid!).length === 2, 45_000, 'both workers ready');
      const click = (unitId: string) => ({ eventId: randomUUID(), type: 'click', unitId, route: 'recommend', value: 1 });
      const post = (events: unknown[]) => call(`${url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
      expect((await post([click('first')])).status).toBe(202);
      await until(async () => metric((await call(`${url}/metrics`)).body, /^bunryu_gateway_event_spill_pending\{/) > 0, 30_000, 'the primary spilling');
      // Past the first retry's backoff: the replay of the spill is hanging now.
      await new Promise((r) => setTimeout(r, 1000));

      const sent = Array.from({ length: 20 }, (_, i) => click(`unit-${i}`));
      const workers = childrenOf(gateway.pid!);
      const answers = await Promise.all([post(sent.slice(0, 10)), post(sent.slice(10)), call(`${url}/v1/routes/recommend/predict`, { headers: { 'x-unit-id': 'unit-p', 'x-request-id': 'req-outage' } })]);
      expect(answers.map((a) => a.status)).toEqual([202, 202, 200]);
      // The whole gateway dies at once, right after its answers, as a SIGKILL of its primary and workers leaves it.
      gateway.kill('SIGKILL');
      for (const pid of workers) process.kill(pid, 'SIGKILL');
      await started.exited;

      const onDisk = await spilledEvents(dataDir);
      const ids = new Set(onDisk.map((e) => e.eventId));
      expect(sent.filter((c) => !ids.has(c.eventId))).toEqual([]);
      expect(onDisk.filter((e) => e.requestId === 'req-outage')).toHaveLength(1);
    } finally {
      if (gateway.exitCode === null && gateway.signalCode === null) gateway.kill('SIGKILL');
      broker.close();
      await es.close();
      await upstream.close();
    }
  }, 90_000);
});

describe.runIf(process.platform === 'linux')('a gateway forked by a cluster primary of another program', () => {
  it('runs as a gateway of its own (no event pipe to expect) and logs its exposures', async () => {
    const upstream = await startUpstream();
    const es = await startFakeExperimentService(snapshot(1, [route('recommend', upstream.url)], [experiment('exp-a', 'recommend')]));
    const dataDir = await tempDir('bunryu-gateway-foreign-');
    // What a process manager's cluster mode does: fork the service as a node:cluster worker.
    const foreign = `import cluster from 'node:cluster';
cluster.setupPrimary({ exec: process.env.GATEWAY_BUNDLE, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const worker = cluster.fork();
process.on('SIGTERM', () => worker.process.kill('SIGTERM'));
worker.on('exit', (code) => process.exit(code ?? 1));`;
    let primary: ChildProcess | undefined;
    try {
      const started = await spawnGateway(['--input-type=module', '-e', foreign], dataDir, es.url, {
        GATEWAY_BUNDLE: await buildGateway(),
        // GATEWAY_WORKERS unset: the default (one per core) must not make it wait for a primary of ours.
        GATEWAY_WORKERS: '',
      });
      primary = started.child;
      const { url, exited } = started;
      await until(async () => (await call(`${url}/readyz`)).status === 200, 30_000, 'ready');
      for (let i = 0; i < 3; i++) {
        const res = await call(`${url}/v1/routes/recommend/predict`, { headers: { 'x-unit-id': `unit-${i}` } });
        expect(res.status).toBe(200);
        expect(String(res.headers['x-ab-assignments'])).toMatch(/^exp-a=(control|treatment)$/);
      }
      primary.kill('SIGTERM');
      expect(await exited).toBe(0);

      expect((await loggedEvents(dataDir, 'foreign-test')).map((e) => e.unitId).sort()).toEqual(['unit-0', 'unit-1', 'unit-2']);
    } finally {
      if (primary && primary.exitCode === null) primary.kill('SIGKILL');
      await es.close();
      await upstream.close();
    }
  }, 60_000);
});
