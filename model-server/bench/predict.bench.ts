/**
 * SPEC §7: model-server predict throughput against a bare fastify JSON route in the same run,
 * same request, same load generator (autocannon in a child process). The bare route parses the
 * same body and answers the same shape without a model; the target is ≥ 0.8× its throughput.
 *
 * Both servers listen in this process, and the measurements alternate (bare, model, bare, model…)
 * so that load from other processes on the machine falls on both alike. The CPU time this
 * process spends per request is reported too: it is the least sensitive figure to such load.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { load, type LoadOptions } from '../../bench/lib/load.ts';
import type { BenchResult } from '../../bench/lib/result.ts';
import { buildApp } from '../src/app.ts';
import { compose } from '../src/compose.ts';
import { ConfigSchema } from '../src/config.ts';
import { trainDemoModels } from '../src/training/train-demo-models.ts';

const ROUNDS = 3;
const SECONDS = 3;
const CONNECTIONS = 50;
const PATH = '/v1/models/recommend/predict';
const one = { user_affinity: 0.4, item_popularity: 0.7, recency: 5, price: 18, position: 2 };
const body = (n: number) => JSON.stringify({ instances: Array.from({ length: n }, (_, i) => ({ ...one, position: 1 + (i % 10) })) });

interface Measured {
  rps: number;
  cpuUsPerRequest: number;
  p50: number;
  p99: number;
}

function options(url: string, params: object, instances: number, seconds: number): LoadOptions {
  return {
    url: url + PATH,
    method: 'POST',
    body: body(instances),
    headers: { 'content-type': 'application/json', 'x-ab-params': JSON.stringify(params) },
    connections: CONNECTIONS,
    seconds,
  };
}

async function measure(url: string, params: object, instances: number): Promise<Measured> {
  const cpu = process.cpuUsage();
  const r = await load(options(url, params, instances, SECONDS));
  const used = process.cpuUsage(cpu);
  if (r.errors || r.non2xx) throw new Error(`${url}: ${r.errors} errors, ${r.non2xx} non-2xx answers of ${r.total}`);
  return { rps: r.rps, cpuUsPerRequest: (used.user + used.system) / r.total, p50: r.p50, p99: r.p99 };
}

/** Alternates baseline and subject `rounds` times; sums favour neither the first nor the last. */
async function compare(baseUrl: string, url: string, params: object, instances: number, rounds: number) {
  await load(options(baseUrl, params, instances, 1)); // warm up both
  await load(options(url, params, instances, 1));
  const base: Measured[] = [];
  const subject: Measured[] = [];
  for (let i = 0; i < rounds; i++) {
    base.push(await measure(baseUrl, params, instances));
    subject.push(await measure(url, params, instances));
  }
  const mean = (xs: Measured[], k: keyof Measured) => xs.reduce((s, x) => s + x[k], 0) / xs.length;
  const median = (xs: Measured[], k: keyof Measured) => xs.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return {
    base: { rps: mean(base, 'rps'), cpu: mean(base, 'cpuUsPerRequest'), p50: median(base, 'p50'), p99: median(base, 'p99') },
    subject: { rps: mean(subject, 'rps'), cpu: mean(subject, 'cpuUsPerRequest'), p50: median(subject, 'p50'), p99: median(subject, 'p99') },
  };
}

export async function run(): Promise<BenchResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bunryu-bench-models-'));
  const bare = Fastify({ logger: false });
  bare.post(PATH, async (request) => {
    const n = (request.body as { instances: unknown[] }).instances.length;
    return { model: 'recommend', version: 'v2', predictions: new Array(n).fill(0.42) };
  });
  try {
    await trainDemoModels(dir);
    const config = Object.freeze(ConfigSchema.parse({ LOG_LEVEL: 'silent', MODEL_DIR: dir, MODEL_WATCH: 'false', MODEL_TRAIN_IF_EMPTY: 'false' }));
    const deps = await compose(config);
    const app = await buildApp(config, deps);
    try {
      const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });
      const url = await app.listen({ port: 0, host: '127.0.0.1' });
      const v2 = { model: 'recommend', version: 'v2' };
      const single = await compare(bareUrl, url, v2, 1, ROUNDS);
      const batch = await compare(bareUrl, url, v2, 10, 1);
      const blend = await compare(bareUrl, url, { ...v2, blend: 0.3 }, 1, 1);
      const s = 'model-server';
      return [
        { scenario: s, metric: `bare fastify JSON route, 1 instance (${CONNECTIONS} conns)`, value: single.base.rps, unit: 'req/s', note: `p50 ${single.base.p50} ms, p99 ${single.base.p99} ms` },
        {
          scenario: s,
          metric: 'predict v2, 1 instance',
          value: single.subject.rps,
          unit: 'req/s',
          baseline: single.base.rps,
          ratio: single.subject.rps / single.base.rps,
          target: '>= 0.8',
          note: `p50 ${single.subject.p50} ms, p99 ${single.subject.p99} ms; ${ROUNDS} alternating rounds of ${SECONDS} s`,
        },
        {
          scenario: s,
          metric: 'predict v2, 1 instance: server CPU per request',
          value: single.subject.cpu,
          unit: 'µs',
          baseline: single.base.cpu,
          ratio: single.base.cpu / single.subject.cpu,
          note: 'bare CPU / model-server CPU: the throughput ratio a CPU-bound server would reach',
        },
        { scenario: s, metric: 'predict v2, batch of 10 instances', value: batch.subject.rps, unit: 'req/s', baseline: batch.base.rps, ratio: batch.subject.rps / batch.base.rps },
        { scenario: s, metric: 'predict blend 0.3·v2 + 0.7·v1, 1 instance', value: blend.subject.rps, unit: 'req/s', baseline: blend.base.rps, ratio: blend.subject.rps / blend.base.rps },
      ];
    } finally {
      await app.close();
      await deps.close();
    }
  } finally {
    await bare.close();
    await rm(dir, { recursive: true, force: true });
  }
}
