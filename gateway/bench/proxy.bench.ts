/**
 * Issue #4 / SPEC §7: the gateway against a bare @fastify/http-proxy, a direct call and (when
 * Debian's nginx is installed) nginx proxy_pass, all in front of the same tiny JSON upstream in
 * its own process, driven by the same wrk load as SPEC §7's baselines (50 connections). The
 * gateway runs as it ships (its bundle, gateway/build.ts), one worker per core (GATEWAY_WORKERS, as nginx's
 * `worker_processes auto`), with 20 running experiments on the route (every request assigned to
 * all 20, targeting evaluated) and exposure logging on (the embedded event log, fsynced). The
 * same gateway in one process is measured too: what one worker costs per request.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigSnapshot, Experiment } from '@bunryu/core';
import { startChild, type ChildServer } from '../../bench/lib/child.ts';
import { load, type LoadResult } from '../../bench/lib/load.ts';
import { cpuSeconds, processTree } from '../../bench/lib/proc.ts';
import { sequenceLoad } from '../../bench/lib/sequence-load.ts';
import { wrk, wrkInstalled } from '../../bench/lib/wrk.ts';
import { buildGateway } from '../build.ts';
import { freePort, nginxConf } from '../../bench/lib/nginx.ts';
import type { BenchResult } from '../../bench/lib/result.ts';

const EXPERIMENTS = 20;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 50;
/** p99 over a few seconds hangs on a handful of requests: more rounds, and their median. */
const HALF_LOAD_ROUNDS = Number(process.env.BENCH_HALF_LOAD_ROUNDS ?? 5);
const PATH = '/v1/models/recommend/predict';
const file = (p: string) => fileURLToPath(new URL(p, import.meta.url));

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  pid?: number;
}

interface Run extends LoadResult {
  cpuUsPerRequest: number | null;
}

/** CPU time (user + system) a process and its children used so far, in ms; null off Linux. */
function cpuMs(pid: number | undefined): number | null {
  if (pid === undefined || process.platform !== 'linux') return null;
  const seconds = cpuSeconds(processTree(pid));
  return seconds === null ? null : seconds * 1000;
}

function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function configSnapshot(upstream: string, count = EXPERIMENTS): ConfigSnapshot {
  const t = '2026-01-01T00:00:00.000Z';
  const experiments: Experiment[] = Array.from({ length: count }, (_, i) => ({
    key: `exp-${String(i).padStart(2, '0')}`,
    route: 'recommend',
    layer: `layer-${i}`,
    allocation: { start: 0, end: 10_000 },
    trafficPercent: 100,
    salt: 's',
    targeting: [{ attribute: 'country', op: 'in', value: ['JP', 'US'] }],
    variants: [
      { key: 'control', weight: 50, params: { [`p${i}`]: 'a' } },
      { key: 'treatment', weight: 50, params: { [`p${i}`]: 'b' } },
    ],
    overrides: { 'qa-user': 'treatment' },
    metrics: { guardrails: ['error_rate', 'latency_ms'] },
    status: 'running',
    version: 1,
    createdAt: t,
    updatedAt: t,
  }));
  return {
    version: 1,
    routes: { recommend: { key: 'recommend', upstream, path: '/v1/models/recommend', defaultParams: { model: 'recommend', version: 'v1' }, timeoutMs: 1000, updatedAt: t } },
    experiments,
    metrics: {},
    holdout: null,
    events: {},
  };
}

/** Just enough experiment-service for the gateway: the snapshot and an idle stream. */
export async function fakeExperimentService(snapshot: ConfigSnapshot): Promise<Server> {
  const body = JSON.stringify(snapshot);
  const server = createServer((req, res) => {
    if (req.url === '/v1/config') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    } else if (req.url === '/v1/config/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: snapshot\ndata: ${body}\n\n`);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

interface Nginx {
  url: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

/** nginx proxy_pass with upstream keepalive, when Debian's nginx is installed. */
async function startNginx(upstreamPort: number, dir: string): Promise<Nginx | null> {
  if (spawnSync('nginx', ['-v']).error) return null;
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  await writeFile(
    conf,
    nginxConf(
      dir,
      'auto',
      `  upstream model { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://model; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }`,
    ),
  );
  const child = spawn('nginx', ['-c', conf, '-p', dir], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}${PATH}`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGQUIT');
      }),
  };
}

export async function run(): Promise<BenchResult[]> {
  if (!wrkInstalled()) throw new Error('the proxy bench drives its load with wrk, as SPEC §7 measured its baselines: apt-get install wrk');
  const bundle = await buildGateway();
  const dir = await mkdtemp(join(tmpdir(), 'bunryu-gateway-bench-'));
  const children: ChildServer[] = [];
  const services: Server[] = [];
  let nginx: Nginx | null = null;
  const workers = availableParallelism();
  try {
    const upstream = await startChild(file('../../bench/lib/upstream.ts'));
    children.push(upstream);
    const bare = await startChild(file('../../bench/lib/bare-proxy.ts'), { UPSTREAM: upstream.url });
    children.push(bare);
    const gatewayServer = async (name: string, experiments: number, gatewayWorkers: number) => {
      const es = await fakeExperimentService(configSnapshot(upstream.url, experiments));
      services.push(es);
      const child = await startChild(
        bundle,
        {
          EXPERIMENT_SERVICE_URL: `http://127.0.0.1:${(es.address() as AddressInfo).port}`,
          BUNRYU_DATA_DIR: join(dir, name),
          GATEWAY_WORKERS: String(gatewayWorkers),
          HOST: '127.0.0.1',
          PORT: '0',
          LOG_LEVEL: 'info',
          KAFKA_BROKERS: '',
        },
        /listening on http:\/\/[\d.]+:(\d+)/,
      );
      children.push(child);
      return child;
    };
    const gateway = await gatewayServer('gateway', EXPERIMENTS, workers);
    const single = await gatewayServer('gateway-1', EXPERIMENTS, 1);
    // The same gateway with no experiment on the route: what forwarding alone costs.
    const plain = await gatewayServer('gateway-0', 0, 1);
    nginx = await startNginx(upstream.port, dir);

    const gatewayHeaders = { 'x-unit-id': 'user-12345', 'x-ab-attr-country': 'JP' };
    const routeUrl = (c: ChildServer) => `${c.url}/v1/routes/recommend/predict`;
    for (const [c, expected] of [[gateway, EXPERIMENTS], [single, EXPERIMENTS], [plain, 0]] as const) {
      let assigned = -1;
      for (let i = 0; i < 100 && assigned !== expected; i++) {
        const check = await fetch(routeUrl(c), { headers: gatewayHeaders });
        assigned = check.status === 200 ? (check.headers.get('x-ab-assignments') ?? '').split(',').filter(Boolean).length : -1;
        if (assigned !== expected) await new Promise((r) => setTimeout(r, 100));
      }
      if (assigned !== expected) throw new Error(`gateway not assigning ${expected} experiments (${assigned} assigned)`);
    }

    const targets: Target[] = [
      { name: 'direct', url: `${upstream.url}${PATH}`, headers: {}, pid: upstream.process.pid },
      { name: 'bare-proxy', url: `${bare.url}${PATH}`, headers: {}, pid: bare.process.pid },
      { name: 'gateway', url: routeUrl(gateway), headers: gatewayHeaders, pid: gateway.process.pid },
      { name: 'gateway-1', url: routeUrl(single), headers: gatewayHeaders, pid: single.process.pid },
      { name: 'gateway-0', url: routeUrl(plain), headers: gatewayHeaders, pid: plain.process.pid },
      ...(nginx ? [{ name: 'nginx', url: `${nginx.url}${PATH}`, headers: {}, pid: nginx.pid }] : []),
    ];
    for (const t of targets) await wrk({ url: t.url, headers: t.headers, seconds: 2, connections: CONNECTIONS }); // JIT, pools

    // Saturation, in interleaved rounds (order rotated) so that load from elsewhere on the
    // machine hits every target alike; per target the median round, and the median of the
    // per-round ratios.
    const runs = new Map<string, Run[]>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < targets.length; k++) {
        const t = targets[(k + round) % targets.length]!;
        const cpu0 = cpuMs(t.pid);
        const r = await wrk({ url: t.url, headers: t.headers, seconds: SECONDS, connections: CONNECTIONS });
        const cpu = cpuMs(t.pid);
        // A rare socket error or timeout on a machine this busy is noise; more is a broken target.
        if (r.errors > r.total / 1000 || r.non2xx > 0) throw new Error(`${t.name}: ${r.errors} errors, ${r.non2xx} non-2xx answers of ${r.total}`);
        runs.get(t.name)!.push({ ...r, cpuUsPerRequest: cpu0 === null || cpu === null ? null : ((cpu - cpu0) * 1000) / r.total });
      }
    }
    const rps = (name: string) => median(runs.get(name)!.map((r) => r.rps));
    const ratio = (name: string, base: string) => median(runs.get(name)!.map((r, i) => r.rps / runs.get(base)![i]!.rps));
    const rounds = (name: string, base: string) => runs.get(name)!.map((r, i) => (r.rps / runs.get(base)![i]!.rps).toFixed(2)).join(', ');
    const cpuPerRequest = (name: string) => median(runs.get(name)!.map((r) => r.cpuUsPerRequest ?? NaN));

    // Latency at half of the bare proxy's saturating load (every connection paced), gateway vs bare proxy.
    const rate = Math.round(rps('bare-proxy') / 2);
    const half: Record<'bare-proxy' | 'gateway' | 'gateway-1', LoadResult[]> = { 'bare-proxy': [], gateway: [], 'gateway-1': [] };
    for (let round = 0; round < HALF_LOAD_ROUNDS; round++) {
      half['bare-proxy'].push(await wrk({ url: `${bare.url}${PATH}`, seconds: SECONDS, connections: CONNECTIONS, ratePerSecond: rate }));
      half.gateway.push(await wrk({ url: routeUrl(gateway), headers: gatewayHeaders, seconds: SECONDS, connections: CONNECTIONS, ratePerSecond: rate }));
      half['gateway-1'].push(await wrk({ url: routeUrl(single), headers: gatewayHeaders, seconds: SECONDS, connections: CONNECTIONS, ratePerSecond: rate }));
    }
    const p99 = (name: keyof typeof half) => median(half[name].map((r) => r.p99));
    const p50 = (name: keyof typeof half) => median(half[name].map((r) => r.p50));
    const achieved = (name: keyof typeof half) => Math.round(median(half[name].map((r) => r.rps)));
    const fmtMs = (n: number) => n.toFixed(2);

    // Behaviour events: 500 per call (the maximum), each validated and tagged against 20 experiments.
    const events = Array.from({ length: 500 }, (_, i) => ({ type: 'click', unitId: `user-${i}`, route: 'recommend', value: 1, attributes: { country: 'JP' } }));
    const ingest = await load({
      url: `${gateway.url}/v1/events`,
      method: 'POST',
      body: JSON.stringify({ events }),
      headers: { 'content-type': 'application/json' },
      seconds: SECONDS,
      connections: 8,
    });
    if (ingest.errors > 0 || ingest.non2xx > 0) throw new Error(`/v1/events: ${ingest.errors} errors, ${ingest.non2xx} non-2xx answers`);

    // A client that posts its events on the connection of its route calls (one keep-alive agent):
    // there the gateway's own server hands them to fastify, which must cost what a connection
    // of their own costs. One event per call, the gateway in one process.
    const oneEvent = JSON.stringify({ events: [{ type: 'click', unitId: 'user-12345', route: 'recommend', value: 1 }] });
    const post = `POST /v1/events HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: ${oneEvent.length}\r\n\r\n${oneEvent}`;
    const routeCall = 'GET /v1/routes/recommend/predict HTTP/1.1\r\nHost: gw\r\nx-unit-id: user-12345\r\nx-ab-attr-country: JP\r\n\r\n';
    const onePosts: Record<'shared' | 'own', { rps: number; cpuUs: number }[]> = { shared: [], own: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, first] of [['shared', routeCall], ['own', post]] as const) {
        const cpu0 = cpuMs(single.process.pid);
        const r = await sequenceLoad({ port: single.port, first, then: post, seconds: SECONDS });
        const cpu = cpuMs(single.process.pid);
        if (r.non2xx > 0 || r.total === 0) throw new Error(`one-event posts (${name} connection): ${r.non2xx} non-2xx answers of ${r.total}`);
        onePosts[name].push({ rps: r.rps, cpuUs: cpu0 === null || cpu === null ? NaN : ((cpu - cpu0) * 1000) / r.total });
      }
    }
    const eventsCpu = (name: 'shared' | 'own') => median(onePosts[name].map((r) => r.cpuUs));
    const eventsRps = (name: 'shared' | 'own') => median(onePosts[name].map((r) => r.rps));

    const results: BenchResult[] = [
      { scenario: 'proxy', metric: 'direct to the upstream', value: rps('direct'), unit: 'req/s' },
      { scenario: 'proxy', metric: 'bare @fastify/http-proxy', value: rps('bare-proxy'), unit: 'req/s' },
      {
        scenario: 'proxy',
        metric: `gateway (${workers} workers, 20 experiments, logging) vs bare proxy`,
        value: rps('gateway'),
        unit: 'req/s',
        baseline: rps('bare-proxy'),
        ratio: ratio('gateway', 'bare-proxy'),
        target: '>= 1.0',
        note: `per-round ratios ${rounds('gateway', 'bare-proxy')}`,
      },
      { scenario: 'proxy', metric: 'gateway vs direct', value: rps('gateway'), unit: 'req/s', baseline: rps('direct'), ratio: ratio('gateway', 'direct') },
      {
        scenario: 'proxy',
        metric: 'gateway in one process vs bare proxy',
        value: rps('gateway-1'),
        unit: 'req/s',
        baseline: rps('bare-proxy'),
        ratio: ratio('gateway-1', 'bare-proxy'),
        note: `per-round ratios ${rounds('gateway-1', 'bare-proxy')}`,
      },
      {
        scenario: 'proxy',
        metric: 'gateway in one process, no experiment, vs bare proxy',
        value: rps('gateway-0'),
        unit: 'req/s',
        baseline: rps('bare-proxy'),
        ratio: ratio('gateway-0', 'bare-proxy'),
      },
    ];
    if (nginx) {
      results.push({ scenario: 'proxy', metric: 'nginx proxy_pass (keepalive, worker_processes auto)', value: rps('nginx'), unit: 'req/s' });
      results.push({
        scenario: 'proxy',
        metric: 'gateway vs nginx',
        value: rps('gateway'),
        unit: 'req/s',
        baseline: rps('nginx'),
        ratio: ratio('gateway', 'nginx'),
        target: '>= 0.5',
        note: `per-round ratios ${rounds('gateway', 'nginx')}`,
      });
      // Where the gap is: the CPU each proxy spends per request (its own processes, user + system).
      if (Number.isFinite(cpuPerRequest('nginx')) && Number.isFinite(cpuPerRequest('gateway'))) {
        results.push({
          scenario: 'proxy',
          metric: `gateway (${workers} workers and primary) CPU per request vs nginx`,
          value: cpuPerRequest('gateway'),
          unit: 'µs/req',
          baseline: cpuPerRequest('nginx'),
          ratio: cpuPerRequest('gateway') / cpuPerRequest('nginx'),
          note: `upstream ${cpuPerRequest('direct').toFixed(1)} µs/req when called directly`,
        });
      }
    } else {
      results.push({ scenario: 'proxy', metric: 'gateway vs nginx: skipped (apt-get install nginx)', value: 0, unit: 'req/s' });
    }
    if (Number.isFinite(cpuPerRequest('gateway-1')) && Number.isFinite(cpuPerRequest('bare-proxy'))) {
      results.push({
        scenario: 'proxy',
        metric: 'gateway CPU per request vs the same with no experiment',
        value: cpuPerRequest('gateway-1'),
        unit: 'µs/req',
        baseline: cpuPerRequest('gateway-0'),
        ratio: cpuPerRequest('gateway-1') / cpuPerRequest('gateway-0'),
        note: 'one process each',
      });
      results.push({
        scenario: 'proxy',
        metric: 'gateway CPU per request vs bare proxy (saturated)',
        value: cpuPerRequest('gateway-1'),
        unit: 'µs/req',
        baseline: cpuPerRequest('bare-proxy'),
        ratio: cpuPerRequest('gateway-1') / cpuPerRequest('bare-proxy'),
        note: `one process; with ${workers} workers and the primary ${cpuPerRequest('gateway').toFixed(1)} µs/req`,
      });
    }
    results.push({
      scenario: 'proxy',
      metric: `p99 added latency over bare proxy at ~${rate} req/s`,
      value: p99('gateway') - p99('bare-proxy'),
      unit: 'ms',
      target: '<= 1',
      note: `p99 gateway ${fmtMs(p99('gateway'))} ms, bare ${fmtMs(p99('bare-proxy'))} ms; p50 gateway ${fmtMs(p50('gateway'))} ms, bare ${fmtMs(p50('bare-proxy'))} ms; achieved ${achieved('gateway')} and ${achieved('bare-proxy')} req/s`,
    });
    results.push({
      scenario: 'proxy',
      metric: 'p99 added latency, gateway in one process',
      value: p99('gateway-1') - p99('bare-proxy'),
      unit: 'ms',
      note: `p99 ${fmtMs(p99('gateway-1'))} ms, p50 ${fmtMs(p50('gateway-1'))} ms at ${achieved('gateway-1')} req/s`,
    });
    results.push({ scenario: 'events', metric: 'gateway /v1/events ingest (500 per call, tagged)', value: ingest.rps * 500, unit: 'events/s', note: `p99 ${ingest.p99} ms per call` });
    results.push({
      scenario: 'events',
      metric: 'one-event POST /v1/events on a route call\'s connection vs on its own, CPU per call (one process)',
      value: eventsCpu('shared'),
      unit: 'µs/req',
      baseline: eventsCpu('own'),
      ratio: eventsCpu('shared') / eventsCpu('own'),
      note: `${Math.round(eventsRps('shared'))} and ${Math.round(eventsRps('own'))} calls/s`,
    });
    return results;
  } finally {
    await nginx?.stop();
    for (const c of children.reverse()) await c.stop();
    for (const server of services) {
      server.closeAllConnections();
      server.close();
    }
    await rm(dir, { recursive: true, force: true });
  }
}
