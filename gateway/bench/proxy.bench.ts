/**
 * Issue #4 / SPEC §7: the gateway against a bare @fastify/http-proxy, a direct call and (when
 * Debian's nginx is installed) nginx proxy_pass, all in front of the same tiny JSON upstream in
 * its own process, driven by the same autocannon load (50 connections). The gateway runs with 20
 * running experiments on the route (every request assigned to all 20, targeting evaluated) and
 * exposure logging on (the embedded event log, fsynced).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigSnapshot, Experiment } from '@bunryu/core';
import { startChild, type ChildServer } from '../../bench/lib/child.ts';
import { load, type LoadResult } from '../../bench/lib/load.ts';
import type { BenchResult } from '../../bench/lib/result.ts';

const EXPERIMENTS = 20;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 50;
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

/** CPU time (user + system) a process used so far, in ms, from /proc (Linux); null elsewhere. */
function cpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
  } catch {
    return null;
  }
}

function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function configSnapshot(upstream: string, count = EXPERIMENTS): ConfigSnapshot {
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
  };
}

/** Just enough experiment-service for the gateway: the snapshot and an idle stream. */
async function fakeExperimentService(snapshot: ConfigSnapshot): Promise<Server> {
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
  stop(): Promise<void>;
}

/** nginx proxy_pass with upstream keepalive, when Debian's nginx is installed. */
async function startNginx(upstreamPort: number, dir: string): Promise<Nginx | null> {
  if (spawnSync('nginx', ['-v']).error) return null;
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const conf = join(dir, 'nginx.conf');
  await writeFile(
    conf,
    `worker_processes auto;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream model { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://model; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`,
  );
  const child = spawn('nginx', ['-c', conf, '-p', dir], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}${PATH}`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGQUIT');
      }),
  };
}

export async function run(): Promise<BenchResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bunryu-gateway-bench-'));
  const children: ChildServer[] = [];
  let es: Server | null = null;
  let es0: Server | null = null;
  let nginx: Nginx | null = null;
  try {
    const upstream = await startChild(file('../../bench/lib/upstream.ts'));
    children.push(upstream);
    const bare = await startChild(file('../../bench/lib/bare-proxy.ts'), { UPSTREAM: upstream.url });
    children.push(bare);
    es = await fakeExperimentService(configSnapshot(upstream.url));
    const gateway = await startChild(file('./gateway-child.ts'), {
      EXPERIMENT_SERVICE_URL: `http://127.0.0.1:${(es.address() as AddressInfo).port}`,
      BUNRYU_DATA_DIR: join(dir, 'data'),
      LOG_LEVEL: 'warn',
      KAFKA_BROKERS: '',
    });
    children.push(gateway);
    // The same gateway with no experiment on the route: what forwarding alone costs.
    es0 = await fakeExperimentService(configSnapshot(upstream.url, 0));
    const plain = await startChild(file('./gateway-child.ts'), {
      EXPERIMENT_SERVICE_URL: `http://127.0.0.1:${(es0.address() as AddressInfo).port}`,
      BUNRYU_DATA_DIR: join(dir, 'data-plain'),
      LOG_LEVEL: 'warn',
      KAFKA_BROKERS: '',
    });
    children.push(plain);
    nginx = await startNginx(upstream.port, dir);

    const gatewayUrl = `${gateway.url}/v1/routes/recommend/predict`;
    const gatewayHeaders = { 'x-unit-id': 'user-12345', 'x-ab-attr-country': 'JP' };
    const check = await fetch(gatewayUrl, { headers: gatewayHeaders });
    const assigned = (check.headers.get('x-ab-assignments') ?? '').split(',').filter(Boolean).length;
    if (check.status !== 200 || assigned !== EXPERIMENTS) throw new Error(`gateway not assigning ${EXPERIMENTS} experiments (status ${check.status}, ${assigned} assigned)`);

    const targets: Target[] = [
      { name: 'direct', url: `${upstream.url}${PATH}`, headers: {}, pid: upstream.process.pid },
      { name: 'bare-proxy', url: `${bare.url}${PATH}`, headers: {}, pid: bare.process.pid },
      { name: 'gateway', url: gatewayUrl, headers: gatewayHeaders, pid: gateway.process.pid },
      { name: 'gateway-0', url: `${plain.url}/v1/routes/recommend/predict`, headers: gatewayHeaders, pid: plain.process.pid },
      ...(nginx ? [{ name: 'nginx', url: `${nginx.url}${PATH}`, headers: {} }] : []),
    ];
    for (const t of targets) await load({ url: t.url, headers: t.headers, seconds: 2, connections: CONNECTIONS }); // JIT, pools

    // Saturation, in interleaved rounds (order rotated) so that load from elsewhere on the
    // machine hits every target alike; per target the median round, and the median of the
    // per-round ratios.
    const runs = new Map<string, Run[]>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < targets.length; k++) {
        const t = targets[(k + round) % targets.length]!;
        const cpu0 = cpuMs(t.pid);
        const r = await load({ url: t.url, headers: t.headers, seconds: SECONDS, connections: CONNECTIONS });
        const cpu = cpuMs(t.pid);
        // A rare socket error or timeout on a machine this busy is noise; more is a broken target.
        if (r.errors > r.total / 1000 || r.non2xx > 0) throw new Error(`${t.name}: ${r.errors} errors, ${r.non2xx} non-2xx answers of ${r.total}`);
        runs.get(t.name)!.push({ ...r, cpuUsPerRequest: cpu0 === null || cpu === null ? null : ((cpu - cpu0) * 1000) / r.total });
      }
    }
    const rps = (name: string) => median(runs.get(name)!.map((r) => r.rps));
    const ratio = (name: string, base: string) => median(runs.get(name)!.map((r, i) => r.rps / runs.get(base)![i]!.rps));
    const cpuPerRequest = (name: string) => median(runs.get(name)!.map((r) => r.cpuUsPerRequest ?? NaN));

    // Latency at half of the bare proxy's saturating load (fixed rate), gateway vs bare proxy.
    const rate = Math.round(rps('bare-proxy') / 2);
    const half: Record<'bare-proxy' | 'gateway', LoadResult[]> = { 'bare-proxy': [], gateway: [] };
    for (let round = 0; round < 2; round++) {
      half['bare-proxy'].push(await load({ url: `${bare.url}${PATH}`, seconds: SECONDS, connections: CONNECTIONS, rate }));
      half.gateway.push(await load({ url: gatewayUrl, headers: gatewayHeaders, seconds: SECONDS, connections: CONNECTIONS, rate }));
    }
    const p99 = (name: 'bare-proxy' | 'gateway') => median(half[name].map((r) => r.p99));
    const p50 = (name: 'bare-proxy' | 'gateway') => median(half[name].map((r) => r.p50));

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

    const g = runs.get('gateway')!;
    const results: BenchResult[] = [
      { scenario: 'proxy', metric: 'direct to the upstream', value: rps('direct'), unit: 'req/s' },
      { scenario: 'proxy', metric: 'bare @fastify/http-proxy', value: rps('bare-proxy'), unit: 'req/s' },
      {
        scenario: 'proxy',
        metric: 'gateway (20 experiments, logging) vs bare proxy',
        value: rps('gateway'),
        unit: 'req/s',
        baseline: rps('bare-proxy'),
        ratio: ratio('gateway', 'bare-proxy'),
        target: '>= 1.0',
        note: `per-round ratios ${g.map((r, i) => (r.rps / runs.get('bare-proxy')![i]!.rps).toFixed(2)).join(', ')}`,
      },
      { scenario: 'proxy', metric: 'gateway vs direct', value: rps('gateway'), unit: 'req/s', baseline: rps('direct'), ratio: ratio('gateway', 'direct') },
      {
        scenario: 'proxy',
        metric: 'gateway with no experiment (forwarding only) vs bare proxy',
        value: rps('gateway-0'),
        unit: 'req/s',
        baseline: rps('bare-proxy'),
        ratio: ratio('gateway-0', 'bare-proxy'),
      },
    ];
    if (nginx) {
      results.push({ scenario: 'proxy', metric: 'nginx proxy_pass (keepalive)', value: rps('nginx'), unit: 'req/s' });
      results.push({ scenario: 'proxy', metric: 'gateway vs nginx', value: rps('gateway'), unit: 'req/s', baseline: rps('nginx'), ratio: ratio('gateway', 'nginx'), target: '>= 0.5' });
    } else {
      results.push({ scenario: 'proxy', metric: 'gateway vs nginx: skipped (apt-get install nginx)', value: 0, unit: 'req/s' });
    }
    if (Number.isFinite(cpuPerRequest('gateway')) && Number.isFinite(cpuPerRequest('bare-proxy'))) {
      results.push({
        scenario: 'proxy',
        metric: 'gateway CPU per request vs the same with no experiment',
        value: cpuPerRequest('gateway'),
        unit: 'µs/req',
        baseline: cpuPerRequest('gateway-0'),
        ratio: cpuPerRequest('gateway') / cpuPerRequest('gateway-0'),
      });
      results.push({
        scenario: 'proxy',
        metric: 'gateway CPU per request vs bare proxy (saturated)',
        value: cpuPerRequest('gateway'),
        unit: 'µs/req',
        baseline: cpuPerRequest('bare-proxy'),
        ratio: cpuPerRequest('gateway') / cpuPerRequest('bare-proxy'),
      });
    }
    results.push({
      scenario: 'proxy',
      metric: `p99 added latency over bare proxy at ${rate} req/s`,
      value: p99('gateway') - p99('bare-proxy'),
      unit: 'ms',
      target: '<= 1',
      note: `p99 gateway ${p99('gateway')} ms, bare ${p99('bare-proxy')} ms; p50 gateway ${p50('gateway')} ms, bare ${p50('bare-proxy')} ms`,
    });
    results.push({ scenario: 'events', metric: 'gateway /v1/events ingest (500 per call, tagged)', value: ingest.rps * 500, unit: 'events/s', note: `p99 ${ingest.p99} ms per call` });
    return results;
  } finally {
    await nginx?.stop();
    for (const c of children.reverse()) await c.stop();
    for (const server of [es, es0]) {
      server?.closeAllConnections();
      server?.close();
    }
    await rm(dir, { recursive: true, force: true });
  }
}
