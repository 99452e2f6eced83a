/**
 * Issue #18 / SPEC §15 results at scale: "`GET /v1/results/:experiment` for 1,000,000 units and
 * 20,000,000 events answers in ≤ 2 s on this machine, with the store's bytes per event reported;
 * show how the time grows from 1M to 20M events." Plus the serving guardrails the autopilot asks
 * for every few seconds (`?metrics=error_rate,latency_ms`) in ≤ 100 ms.
 *
 * One chdb store in this process (the aggregator's engine, in-process as deployed by default),
 * filled straight into the `events` table by INSERT … SELECT from numbers() in chunks, so the
 * materialized views run as they do on ingest. Then the results service as the endpoint calls it:
 * 1. 1,000,000 units, one first exposure each (1M events); 2. + 4M behaviour events (5M);
 * 3. + 15M more behaviour events and repeat exposures (20M). After each step:
 * - results: `ResultsService.results()` with a primary metric, two guardrails and the built-ins
 *   (the median of RUNS calls); target ≤ 2,000 ms at 20M.
 * - timeseries of the primary metric (median of RUNS); target ≤ 2,000 ms at 20M.
 * - serving guardrails: `results(key, ['error_rate', 'latency_ms'])` (median of RUNS); ≤ 100 ms.
 * - bytes per event on disk (active parts of every table, after the merges the load left running),
 *   the process's RSS and its peak, and the load's own rate (events/s through the views).
 *
 * BENCH_SCALE_UNITS (default 1,000,000) scales every size down for development, e.g. 50000.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchResult } from '../lib/result.ts';
import { chdbClient } from '../../aggregator/src/metrics-store/clickhouse-client.ts';
import { ClickHouseMetricsStore } from '../../aggregator/src/metrics-store/clickhouse-metrics-store.ts';
import { silentLogger } from '@bunryu/platform/log';
import { ResultsService } from '../../aggregator/src/results/results-service.ts';

const UNITS = Number(process.env.BENCH_SCALE_UNITS ?? 1_000_000);
const STEPS = (process.env.BENCH_SCALE_STEPS ?? "1,5,20").split(",").map((k) => Number(k) * UNITS);
const CHUNK = 2_000_000;
const RUNS = 3;
/** Events added between two asks, as live traffic would (about 5 s of SPEC §7's rate). */
const LIVE = Math.round(UNITS / 4);
const KEY = 'scale-exp';
const START = Date.UTC(2026, 10, 1);
/** First exposures spread over two days: the automatic interval gives 48 hourly buckets. */
const SPAN_MS = 2 * 86_400_000;

const EXPERIMENT = {
  key: KEY,
  route: 'recommend',
  layer: KEY,
  trafficPercent: 100,
  allocation: { start: 0, end: 10_000 },
  salt: '',
  targeting: [],
  variants: [
    { key: 'control', weight: 50, params: {} },
    { key: 'treatment', weight: 50, params: {} },
  ],
  overrides: {},
  metrics: { primary: 'ctr', guardrails: ['dwell_time', 'clicks_per_impression'] },
  status: 'running' as const,
  version: 1,
  createdAt: '2026-11-01T00:00:00.000Z',
  updatedAt: '2026-11-01T00:00:00.000Z',
};
const CATALOGUE: Record<string, unknown> = {
  ctr: { key: 'ctr', type: 'proportion', event: 'click' },
  dwell_time: { key: 'dwell_time', type: 'mean', event: 'dwell' },
  clicks_per_impression: { key: 'clicks_per_impression', type: 'ratio', numerator: { event: 'click' }, denominator: { event: 'impression' } },
};

/** Unit `u` (0-based) of the generated data: its id, variant and first exposure time, as SQL over `u`. */
const unitId = (u: string) => `concat('u-', toString(${u}))`;
const t0 = (u: string) => `(${START} + intHash64(${u}) % ${SPAN_MS})`;
const h = (salt: number) => `intHash64(number * 7 + ${salt})`;

/** Rows `from` … `from + n` of the first-exposure step: one exposure per unit. */
function firstExposures(from: number, n: number): string {
  return `INSERT INTO events (eventId, type, ts, unitId, route, requestId, assignments, latencyMs, status)
  SELECT toString(generateUUIDv4(number)), 'exposure', ${t0('number')}, ${unitId('number')}, 'recommend', toString(generateUUIDv4(number + 1)),
    [('${KEY}', if(number % 2 = 0, 'control', 'treatment'))], 2 + ${h(1)} % 2000 / 100, if(${h(2)} % 50 = 0, 503, 200)
  FROM numbers(${from}, ${n})`;
}

/**
 * Behaviour and repeat exposures for random units: 55% impressions, 20% clicks, 15% dwell (with a
 * value), 10% exposures; 5% of them fall before the unit's first exposure (they must not count).
 */
function moreEvents(from: number, n: number): string {
  const u = `(${h(3)} % ${UNITS})`;
  return `INSERT INTO events (eventId, type, ts, unitId, route, requestId, assignments, value, latencyMs, status)
  SELECT toString(generateUUIDv4(number)), kind, ts, ${unitId('u')}, 'recommend', '',
    if(kind = 'exposure', [('${KEY}', if(u % 2 = 0, 'control', 'treatment'))], []),
    if(kind = 'dwell', ${h(4)} % 3000 / 10, if(kind = 'click', 1, NULL)),
    if(kind = 'exposure', 2 + ${h(5)} % 2000 / 100 + u % 2, NULL),
    if(kind = 'exposure', if(${h(6)} % 40 = 0, 503, 200), NULL)
  FROM (
    SELECT number, ${u} AS u, ${h(7)} % 100 AS r,
      multiIf(r < 55, 'impression', r < 75, 'click', r < 90, 'dwell', 'exposure') AS kind,
      ${t0('u')} + if(${h(8)} % 20 = 0, -1 - ${h(9)} % 600000, ${h(10)} % ${SPAN_MS}) AS ts
    FROM numbers(${from}, ${n})
  )`;
}

const OPTIONS = { sequentialMinUnits: 100, servedMaxAgeMs: 3000 };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function once<T>(f: () => Promise<T>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

async function timed<T>(f: () => Promise<T>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await f();
    times.push(performance.now() - t);
  }
  return median(times);
}

function memory(): { rss: number; peak: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

export async function run(): Promise<BenchResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bunryu-bench-scale-'));
  const client = chdbClient(join(dir, 'chdb'));
  const store = await ClickHouseMetricsStore.open(client);
  const definitions = { experiment: (key: string) => (key === KEY ? EXPERIMENT : undefined), metrics: () => CATALOGUE };
  const service = new ResultsService(store, definitions, OPTIONS, silentLogger);
  const out: BenchResult[] = [];
  const mb = (bytes: number) => bytes / 2 ** 20;
  try {
    let loaded = 0;
    for (const total of STEPS) {
      const started = performance.now();
      while (loaded < total) {
        const n = Math.min(CHUNK, total - loaded);
        await client.command({ query: loaded < UNITS ? firstExposures(loaded, Math.min(n, UNITS - loaded)) : moreEvents(loaded, n) });
        loaded += loaded < UNITS ? Math.min(n, UNITS - loaded) : n;
      }
      const loadSeconds = (performance.now() - started) / 1000;
      const added = total - (STEPS[STEPS.indexOf(total) - 1] ?? 0);
      const label = `${(UNITS / 1e6).toLocaleString('en')}M units, ${(total / 1e6).toLocaleString('en')}M events`;
      const target = total === 20 * UNITS ? '<= 2000' : undefined;

      // The first ask of each query shape is answered directly while its fold is built in the
      // background (ADR 0013); after a later load, the first ask refreshes the fold for every unit
      // the load touched.
      const firstResults = await once(() => service.results(KEY));
      const firstTimeseries = await once(() => service.timeseries(KEY, 'ctr', undefined));
      const settled = await once(() => store.foldsSettled());
      const results = await timed(() => service.results(KEY));
      const timeseries = await timed(() => service.timeseries(KEY, 'ctr', undefined));
      // Live traffic between two asks: LIVE more events on random units, then the next ask.
      await client.command({ query: moreEvents(loaded, LIVE) });
      loaded += LIVE;
      const afterLive = await once(() => service.results(KEY));
      const GUARDRAILS = ['error_rate', 'latency_ms'];
      // One computation of the guardrails (what each background refresh costs), then what the
      // autopilot sees asking again: the kept answer, refreshed in the background.
      const refresh = await timed(async () => {
        const cold = new ResultsService(store, definitions, OPTIONS, silentLogger);
        await cold.results(KEY, GUARDRAILS);
        cold.close();
      });
      await service.results(KEY, GUARDRAILS);
      const guardrails = await timed(() => service.results(KEY, GUARDRAILS));
      const rs = await client.query({ query: 'SELECT sum(bytes_on_disk) AS b FROM system.parts WHERE active AND database = currentDatabase()', format: 'JSONEachRow' });
      const [row] = await rs.json<{ b: string }>();
      const { rss, peak } = memory();
      out.push(
        { scenario: 'scale', metric: `${label}: results (ms)`, value: results, unit: 'ms', ...(target ? { target } : {}) },
        { scenario: 'scale', metric: `${label}: results, first ask after the load (ms)`, value: firstResults, unit: 'ms', note: 'direct while the fold is first built; later, a refresh of every unit the load touched' },
        { scenario: 'scale', metric: `${label}: timeseries, first ask after the load (ms)`, value: firstTimeseries, unit: 'ms' },
        { scenario: 'scale', metric: `${label}: folds built or refreshed after those asks (ms)`, value: settled, unit: 'ms', note: 'background work left when both first asks had answered' },
        { scenario: 'scale', metric: `${label}: results after ${LIVE.toLocaleString('en')} more events (ms)`, value: afterLive, unit: 'ms', note: 'one refresh of the units those events touched' },
        { scenario: 'scale', metric: `${label}: timeseries of the primary (ms)`, value: timeseries, unit: 'ms', ...(target ? { target } : {}) },
        { scenario: 'scale', metric: `${label}: serving guardrails, as asked again (ms)`, value: guardrails, unit: 'ms', target: '<= 100' },
        { scenario: 'scale', metric: `${label}: serving guardrails, one computation (ms)`, value: refresh, unit: 'ms', note: 'the cost of each background refresh while the autopilot asks' },
        { scenario: 'scale', metric: `${label}: bytes per event on disk`, value: Number(row?.b) / total, unit: 'B' },
        { scenario: 'scale', metric: `${label}: process RSS (peak)`, value: mb(rss), unit: `MB (${Math.round(mb(peak))})` },
        { scenario: 'scale', metric: `${label}: store load rate (events/s)`, value: added / loadSeconds, unit: 'events/s', note: 'INSERT … SELECT into events, views included' },
      );
    }
  } finally {
    service.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await run()) process.stdout.write(`${r.metric.padEnd(64)} ${r.value.toFixed(0).padStart(10)} ${r.unit}\n`);
}
