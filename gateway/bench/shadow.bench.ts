/**
 * Issue #22 / SPEC §15 shadow: "with 10% of requests shadowed, the client's p99 rises by ≤ 1 ms
 * and throughput stays ≥ 0.9× the same gateway without shadow". Two one-process gateways (the
 * gateway bundle, the embedded event log, 20 running experiments on the route) in front of the
 * same tiny JSON upstream, identical but for the route's `shadow` (10%, to a second upstream of
 * the same kind): the same load against each, twice, alternating, and the better round of each
 * kept; throughput at full load and p99 at half of the plain gateway's throughput.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild, type ChildServer } from '../../bench/lib/child.ts';
import { load } from '../../bench/lib/load.ts';
import type { BenchResult } from '../../bench/lib/result.ts';
import { buildGateway } from '../build.ts';
import { configSnapshot, fakeExperimentService } from './proxy.bench.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = 32;
const PATH = '/v1/routes/recommend/predict';
const BODY = '{"instances":[{"x":1}]}';
const HEADERS = { 'content-type': 'application/json', 'x-unit-id': 'bench-unit', 'x-ab-attr-country': 'JP' };

export async function run(): Promise<BenchResult[]> {
  const bundle = await buildGateway();
  const dir = await mkdtemp(join(tmpdir(), 'bunryu-shadow-bench-'));
  const children: ChildServer[] = [];
  const services: Server[] = [];
  try {
    const file = (p: string) => fileURLToPath(new URL(p, import.meta.url));
    const upstream = await startChild(file('../../bench/lib/upstream.ts'));
    const shadowUpstream = await startChild(file('../../bench/lib/upstream.ts'));
    children.push(upstream, shadowUpstream);
    const gateways = new Map<string, ChildServer>();
    for (const kind of ['plain', 'shadow'] as const) {
      const config = configSnapshot(upstream.url);
      if (kind === 'shadow') config.routes.recommend!.shadow = { params: { version: 'v3' }, percent: 10, upstream: shadowUpstream.url, compare: 'predictions' };
      const es = await fakeExperimentService(config);
      services.push(es);
      const child = await startChild(
        bundle,
        { EXPERIMENT_SERVICE_URL: `http://127.0.0.1:${(es.address() as AddressInfo).port}`, BUNRYU_DATA_DIR: join(dir, kind), GATEWAY_WORKERS: '1', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', KAFKA_BROKERS: '' },
        /listening on http:\/\/[\d.]+:(\d+)/,
      );
      children.push(child);
      gateways.set(kind, child);
      for (let i = 0; ; i++) {
        const r = await fetch(`${child.url}${PATH}`, { method: 'POST', headers: HEADERS, body: BODY }).catch(() => null);
        if (r?.status === 200 && r.headers.get('x-ab-assignments')) break;
        if (i > 100) throw new Error(`${kind} gateway does not serve the route`);
        await new Promise((res) => setTimeout(res, 100));
      }
      await load({ url: `${child.url}${PATH}`, method: 'POST', body: BODY, headers: HEADERS, seconds: 1, connections: CONNECTIONS }); // JIT
    }
    const best = new Map<string, number>();
    for (let round = 0; round < 2; round++) {
      for (const [kind, gw] of gateways) {
        const r = await load({ url: `${gw.url}${PATH}`, method: 'POST', body: BODY, headers: HEADERS, seconds: SECONDS, connections: CONNECTIONS });
        if (r.errors > 0 || r.non2xx > 0) throw new Error(`${kind}: ${r.errors} errors, ${r.non2xx} non-2xx answers`);
        best.set(kind, Math.max(best.get(kind) ?? 0, r.rps));
      }
    }
    // p99 at half the plain gateway's throughput, where queueing does not decide it.
    const rate = Math.round(best.get('plain')! / 2);
    const p99 = new Map<string, number>();
    for (let round = 0; round < 2; round++) {
      for (const [kind, gw] of gateways) {
        const r = await load({ url: `${gw.url}${PATH}`, method: 'POST', body: BODY, headers: HEADERS, seconds: SECONDS, connections: CONNECTIONS, rate });
        p99.set(kind, Math.min(p99.get(kind) ?? Infinity, r.p99));
      }
    }
    const [plain, shadowed] = [best.get('plain')!, best.get('shadow')!];
    return [
      { scenario: 'shadow', metric: 'throughput with 10% shadowed vs the same gateway without', value: shadowed, unit: 'req/s', baseline: plain, ratio: shadowed / plain, target: '>= 0.9' },
      {
        scenario: 'shadow',
        metric: `client p99 added by 10% shadow at ${rate.toLocaleString('en-US')} req/s (ms)`,
        value: p99.get('shadow')! - p99.get('plain')!,
        unit: 'ms',
        target: '<= 1',
        note: `p99 ${p99.get('shadow')} ms with shadow, ${p99.get('plain')} ms without`,
      },
    ];
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await Promise.all(services.map((s) => new Promise<void>((r) => s.close(() => r()))));
    await rm(dir, { recursive: true, force: true });
  }
}
