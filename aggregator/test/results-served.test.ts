import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILT_IN_METRICS, type Event } from '@bunryu/core';
import { chdbClient } from '../src/metrics-store/clickhouse-client.ts';
import { ClickHouseMetricsStore } from '../src/metrics-store/clickhouse-metrics-store.ts';
import { storedEvent } from '../src/metrics-store/metrics-store.ts';
import { silentLogger } from '@bunryu/platform/log';
import { ResultsService } from '../src/results/results-service.ts';
import { experimentData, exposure } from './support/events.ts';
import { experiment } from './support/fake-experiment-service.ts';

/**
 * `results(key, only)` — `GET /v1/results/:experiment?metrics=` — as the autopilot uses it: the
 * same figures as the full answer for the metrics asked, an answer kept and refreshed in the
 * background while asked for, and never older than `servedMaxAgeMs`.
 */
const KEY = 'served-exp';
const MAX_AGE = 400;
const CATALOGUE: Record<string, unknown> = { ...BUILT_IN_METRICS, ctr: { key: 'ctr', type: 'proportion', event: 'click' } };
const EXPERIMENT = experiment(KEY, [{ key: 'control', weight: 50 }, { key: 'treatment', weight: 50 }], { primary: 'ctr', guardrails: [] });
const GUARDRAILS = ['latency_ms', 'error_rate'];
const start = Date.UTC(2026, 10, 20, 9);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let store: ClickHouseMetricsStore;
let service: ResultsService;
let events: Event[];
const put = (es: Event[]) => store.insert(es.map(storedEvent));

beforeAll(async () => {
  store = await ClickHouseMetricsStore.open(chdbClient(mkdtempSync(join(tmpdir(), 'bunryu-served-'))));
  const definitions = { experiment: (key: string) => (key === KEY ? EXPERIMENT : undefined), metrics: () => CATALOGUE };
  service = new ResultsService(store, definitions, { sequentialMinUnits: 20, servedMaxAgeMs: MAX_AGE }, silentLogger);
  events = experimentData({ experiment: KEY, variants: ['control', 'treatment'], units: 300, seed: 21, start, spanMs: 3_600_000 });
  await put(events);
});

afterAll(async () => {
  service?.close();
  await store?.close();
});

describe('results restricted to some metrics (?metrics=)', () => {
  it('answers the full answer with only the metrics asked, in the analysed order', async () => {
    const full = await service.results(KEY);
    const some = await service.results(KEY, GUARDRAILS);
    // updatedAt is the newest data the metrics asked for read: here exposures only.
    // The restricted answer leaves out what reads every exposure again (served shares, percentiles).
    const { served: _served, latencyPercentiles: _percentiles, ...headline } = full;
    expect({ ...some, updatedAt: full.updatedAt }).toEqual({ ...headline, metrics: full.metrics.filter((m) => GUARDRAILS.includes(m.metric)) });
    expect(some.updatedAt! <= full.updatedAt!).toBe(true);
    expect(some.metrics.map((m) => m.metric)).toEqual(['error_rate', 'latency_ms']);
  });

  it('refuses a metric the experiment does not analyse with a 400 naming metrics', async () => {
    await expect(service.results(KEY, ['error_rate', 'no_such_metric'])).rejects.toMatchObject({ statusCode: 400, details: { fields: [{ path: 'metrics' }] } });
  });

  it('a kept answer is never older than the bound: new exposures, a late first exposure and a redelivered batch all show as a fresh computation does', async () => {
    await service.results(KEY, GUARDRAILS);
    // New units, and a late exposure that moves an existing unit's start and adds an error.
    await put([
      exposure(`${KEY}-new-1`, start + 10, [{ experiment: KEY, variant: 'control' }], { status: 503, latencyMs: 7 }),
      exposure(`${KEY}-u0`, start - 60_000, [{ experiment: KEY, variant: events.find((e) => e.unitId === `${KEY}-u0`)!.assignments[0]!.variant }], { status: 500, latencyMs: 900 }),
    ]);
    await sleep(MAX_AGE + 50);
    const served = await service.results(KEY, GUARDRAILS);
    const full = await service.results(KEY);
    const { served: _s, latencyPercentiles: _p, ...headline } = full;
    expect({ ...served, updatedAt: full.updatedAt }).toEqual({ ...headline, metrics: full.metrics.filter((m) => GUARDRAILS.includes(m.metric)) });
    // A redelivered batch changes nothing, kept or recomputed.
    await put(events.slice(0, 500));
    await sleep(MAX_AGE + 50);
    expect(JSON.stringify(await service.results(KEY, GUARDRAILS))).toBe(JSON.stringify(served));
  });

  it('keeps refreshing in the background while asked: a later ask is answered from the kept answer without computing', async () => {
    await service.results(KEY, GUARDRAILS);
    // The refreshes as they run once the guardrails' fold exists (a first build beside them slows them, ADR 0013).
    await store.foldsSettled();
    await service.results(KEY, GUARDRAILS);
    // Past the bound, the background refresh has replaced the answer: asking does not compute.
    await sleep(MAX_AGE + 200);
    let computed = 0;
    const series = store.series.bind(store);
    store.series = (q) => (computed++, series(q));
    try {
      await service.results(KEY, GUARDRAILS);
      expect(computed).toBe(0);
    } finally {
      store.series = series;
    }
  });
});
