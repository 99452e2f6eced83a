/**
 * experiment-service figures (wired into `npm run bench`; also runnable alone with
 * `npx tsx experiment-service/bench/snapshot.bench.ts`):
 * - config snapshot build time (read the store, build, serialize) and size with 1,000 running
 *   experiments, on the file store and on Redis;
 * - latency of a ramp through HTTP with those 1,000 experiments present;
 * - SSE propagation with Redis: from sending a ramp to instance A until a stream subscriber of
 *   instance B has the snapshot that contains it (SPEC §7: within 1 s at p99).
 * Redis figures are left out when no Redis answers at REDIS_URL (default 127.0.0.1:6379).
 */
import { gzipSync } from 'node:zlib';
import { integrationServer } from '@bunryu/platform/testing';
import { FLEET_EXPERIMENTS, fleet } from '../../bench/lib/fleet.ts';
import { buildSnapshot, serializeSnapshot } from '../src/config-snapshot/build-snapshot.ts';
import type { ExperimentStore } from '../src/store/experiment-store.ts';
import { bearer, startApp, storeFixture, type StoreFixture } from '../test/support/service.ts';
import { connectSse } from '../test/support/sse-client.ts';

export interface BenchResult {
  scenario: string;
  metric: string;
  value: number;
  unit: string;
}

const EXPERIMENTS = FLEET_EXPERIMENTS;

async function seedFleet(store: ExperimentStore): Promise<void> {
  const { routes, experiments } = fleet();
  await store.commit({ routes, experiments, audit: [] });
}

const median = (xs: number[]) => percentile(xs, 0.5);
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

async function snapshotFigures(kind: 'file' | 'redis', fixture: StoreFixture, out: BenchResult[]): Promise<void> {
  const seeder = await fixture.open();
  await seedFleet(seeder);
  await seeder.close();
  const build = async (store: ExperimentStore) => serializeSnapshot(buildSnapshot(await store.load()));

  // Cold: a fresh instance (a restarted or newly scaled replica) reads and serializes everything.
  const cold: number[] = [];
  let json = '';
  for (let i = 0; i < 5; i++) {
    const store = await fixture.open();
    const t0 = performance.now();
    json = await build(store);
    cold.push(performance.now() - t0);
    await store.close();
  }
  // Warm: the rebuild every instance does after a change of one experiment.
  const store = await fixture.open();
  await build(store);
  const warm: number[] = [];
  for (let i = 0; i < 20; i++) {
    const e = (await store.getExperiment('exp-0003'))!;
    await store.commit({ expect: { [e.key]: e.version }, experiments: [{ ...e, version: e.version + 1, salt: `s${i}` }], audit: [] });
    const t0 = performance.now();
    await build(store);
    warm.push(performance.now() - t0);
  }
  await store.close();
  const scenario = `experiment-service snapshot, ${EXPERIMENTS} experiments, ${kind} store`;
  out.push({ scenario, metric: 'cold build p50 (read all + build + serialize)', value: round(median(cold)), unit: 'ms' });
  out.push({ scenario, metric: 'rebuild after one change p50', value: round(median(warm)), unit: 'ms' });
  out.push({ scenario, metric: 'size', value: Buffer.byteLength(json), unit: 'bytes' });
  out.push({ scenario, metric: 'size gzipped', value: gzipSync(json).length, unit: 'bytes' });
}

async function rampFigures(kind: 'file' | 'redis', fixture: StoreFixture, out: BenchResult[]): Promise<void> {
  const t = await startApp(fixture);
  try {
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      const r = await t.app.inject({ method: 'POST', url: '/v1/experiments/exp-0007/ramp', headers: bearer('releaser'), payload: { weights: { control: 1 + (i % 98), treatment: 99 - (i % 98) } } });
      times.push(performance.now() - t0);
      if (r.statusCode !== 200) throw new Error(`ramp failed: ${r.body}`);
    }
    const scenario = `experiment-service ramp via HTTP, ${EXPERIMENTS} experiments, ${kind} store`;
    out.push({ scenario, metric: 'p50', value: round(median(times)), unit: 'ms' });
    out.push({ scenario, metric: 'p99', value: round(percentile(times, 0.99)), unit: 'ms' });
  } finally {
    await t.close();
  }
}

async function propagationFigures(fixture: StoreFixture, out: BenchResult[]): Promise<void> {
  const a = await startApp(fixture);
  const b = await startApp(fixture);
  const baseA = await a.app.listen({ host: '127.0.0.1', port: 0 });
  const baseB = await b.app.listen({ host: '127.0.0.1', port: 0 });
  const sse = await connectSse(`${baseB}/v1/config/stream`, bearer('viewer'));
  try {
    await sse.next(); // the snapshot as it is
    const times: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      const res = await fetch(`${baseA}/v1/experiments/exp-0042/ramp`, {
        method: 'POST',
        headers: { ...bearer('releaser'), 'content-type': 'application/json' },
        body: JSON.stringify({ weights: { control: 10 + i, treatment: 90 - i } }),
      });
      if (res.status !== 200) throw new Error(`ramp failed: ${await res.text()}`);
      const applied = ((await res.json()) as { variants: { weight: number }[] }).variants[0]!.weight;
      // Wait for the snapshot that carries this ramp (a later one would carry it too).
      for (;;) {
        const ev = await sse.next(5000);
        const exp = (JSON.parse(ev.data) as { experiments: { key: string; variants: { weight: number }[] }[] }).experiments.find((e) => e.key === 'exp-0042');
        if (exp?.variants[0]!.weight === applied) break;
      }
      times.push(performance.now() - t0);
    }
    const scenario = `experiment-service config propagation A→B over Redis, ${EXPERIMENTS} experiments`;
    out.push({ scenario, metric: 'p50 (ramp sent on A → snapshot on B stream)', value: round(median(times)), unit: 'ms' });
    out.push({ scenario, metric: 'p99', value: round(percentile(times, 0.99)), unit: 'ms' });
    out.push({ scenario, metric: 'max', value: round(Math.max(...times)), unit: 'ms' });
  } finally {
    sse.close();
    await Promise.all([a.close(), b.close()]);
  }
}

export async function run(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  const redis = await integrationServer('REDIS_URL', 'redis://127.0.0.1:6379');
  for (const kind of ['file', 'redis'] as const) {
    if (kind === 'redis' && !redis.url) continue;
    const fixture = await storeFixture(kind, redis.url);
    try {
      await snapshotFigures(kind, fixture, out);
      await rampFigures(kind, fixture, out);
      if (kind === 'redis') await propagationFigures(fixture, out);
    } finally {
      await fixture.cleanup();
    }
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await run()) process.stdout.write(`${r.scenario} | ${r.metric}: ${r.value} ${r.unit}\n`);
}
