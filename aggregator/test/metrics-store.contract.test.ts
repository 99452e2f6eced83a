import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { srmAcrossGroups, type Event } from '@bunryu/core';
import { chdbClient, clickHouseServerClient } from '../src/metrics-store/clickhouse-client.ts';
import { ClickHouseMetricsStore } from '../src/metrics-store/clickhouse-metrics-store.ts';
import { OPEN_END, storedEvent, type MetricSpec, type SeriesRow } from '../src/metrics-store/metrics-store.ts';
import { behaviour, experimentData, exposure, rampedData, rng } from './support/events.ts';
import { METRICS, near, reference } from './support/reference.ts';

/**
 * The MetricsStore contract, run against the ClickHouse adapter over chdb (in-process, always)
 * and over a ClickHouse server when CLICKHOUSE_URL is set. No server runs on the development
 * and CI machines (SPEC §9: Debian's 18.16 lacks query parameters), so that half is opt-in.
 */

// chdb binds one data directory per process: both forms of the store share it.
const chdbPath = mkdtempSync(join(tmpdir(), 'bunryu-store-'));
const adapters: [string, () => ClickHouseMetricsStore | Promise<ClickHouseMetricsStore>][] = [
  ['chdb', () => ClickHouseMetricsStore.open(chdbClient(chdbPath))],
  ['chdb, every query straight from the per-unit sets (no fold)', () => ClickHouseMetricsStore.open(chdbClient(chdbPath), { fold: false })],
];
if (process.env.CLICKHOUSE_URL) {
  const url = process.env.CLICKHOUSE_URL;
  adapters.push(['clickhouse server', () => ClickHouseMetricsStore.open(clickHouseServerClient(url))], ['clickhouse server, no fold', () => ClickHouseMetricsStore.open(clickHouseServerClient(url), { fold: false })]);
}

/** A shadow event's pair (SPEC §13) as a gateway writes it. */
const SHADOW_PAIR: NonNullable<Event['shadow']> = {
  compare: 'scores',
  primary: { params: { version: 'v1' }, status: 200, latencyMs: 4.5, output: [0.9, 0.1] },
  shadow: { params: { version: 'v3' }, status: 200, latencyMs: 6.25, output: [0.8, 0.2] },
};

const runOfFile = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

/** Compares the store's rows of one bucket with the reference, metric by metric. */
function expectMatches(rows: SeriesRow[], bucket: number, events: Event[], experiment: string, metrics: MetricSpec[], end: number, phaseStarts?: number[], preWindowMs?: number, settleMs?: number): void {
  const expected = reference(events, experiment, metrics, end, phaseStarts, preWindowMs, settleMs);
  const got = rows.filter((r) => r.bucket === bucket);
  const keyOf = (r: SeriesRow) => (phaseStarts ? `${r.phase}:${r.variant}` : r.variant);
  expect(got.map(keyOf).sort()).toEqual([...expected.keys()].sort());
  for (const row of got) {
    const want = expected.get(keyOf(row))!;
    expect({ units: row.units, moved: row.moved, exposures: row.exposures }).toEqual({ units: want.units, moved: want.moved, exposures: want.exposures });
    row.metrics.forEach((m, j) => {
      const w = want.metrics[j]!;
      for (const field of Object.keys(w) as (keyof typeof w)[]) {
        if (field === 'covariate') continue;
        expect(near(m[field] as number, w[field] as number), `${row.variant} metric ${j} ${field}: got ${m[field]}, expected ${w[field]}`).toBe(true);
      }
      expect(m.covariate === undefined, `${row.variant} metric ${j} has a covariate`).toBe(w.covariate === undefined);
      if (w.covariate) {
        for (const k of ['sumX', 'sumX2', 'sumXY'] as const) expect(near(m.covariate![k], w.covariate[k]), `${row.variant} metric ${j} covariate ${k}: got ${m.covariate![k]}, expected ${w.covariate[k]}`).toBe(true);
      }
    });
  }
}

describe.each(adapters)('MetricsStore contract: ClickHouse adapter over %s', (name, open) => {
  // Forms of the store may share a database: each writes its own experiments.
  const run = `${runOfFile}${adapters.findIndex(([n]) => n === name)}`;
  let store: ClickHouseMetricsStore;
  const put = (events: Event[]) => store.insert(events.map(storedEvent));
  beforeAll(async () => {
    store = await open();
  });
  afterAll(async () => {
    await store?.close();
  });

  it('answers ping', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });

  it('answers event volume per behaviour type: in the window once per event id, marked shares, last seen ever', async () => {
    const a = `vol_${run}_a`;
    const b = `vol_${run}_b`;
    const since = 1_900_000_000_000;
    const inWindow = [
      behaviour(a, 'u1', since + 10),
      behaviour(a, 'u2', since + 20, { catalogue: 'invalid' }),
      behaviour(a, 'u3', since + 30, { catalogue: 'undeclared' }),
    ];
    await put([...inWindow, behaviour(a, 'u1', since - 5000), behaviour(b, 'u1', since - 7000), exposure(`vol-${run}`, since + 40, [])]);
    await put(inWindow.slice(0, 2)); // redelivered
    await put([behaviour('shadow', 'u1', since + 50, { route: 'r', requestId: `vol-${run}`, shadow: SHADOW_PAIR })]);
    const all = await store.eventVolume(since);
    expect(all.map((r) => r.type)).not.toContain('exposure');
    expect(all.map((r) => r.type), 'the gateway writes shadow pairs: they are not behaviour').not.toContain('shadow');
    const rows = all.filter((r) => r.type.startsWith(`vol_${run}`));
    expect(rows).toEqual([
      { type: a, events: 3, undeclared: 1, invalid: 1, lastTs: since + 30 },
      { type: b, events: 0, undeclared: 0, invalid: 0, lastTs: since - 7000 },
    ]);
  });

  it('aggregates per variant exactly as the reference reading of the spec does, at every bucket end', async () => {
    const experiment = `contract-${run}-a`;
    const start = 1_760_000_000_000;
    const events = experimentData({ experiment, variants: ['control', 'treatment', 'big'], units: 400, seed: 11, start, spanMs: 3 * 3_600_000 });
    await put(events);
    const ends = [start + 3_600_000, start + 2 * 3_600_000, OPEN_END];
    const rows = await store.series({ experiment, metrics: METRICS, ends });
    ends.forEach((end, k) => expectMatches(rows, k, events, experiment, METRICS, end === OPEN_END ? Infinity : end));
    expect(await store.span(experiment)).toEqual({
      firstTs: Math.min(...events.filter((e) => e.type === 'exposure').map((e) => e.ts)),
      lastTs: Math.max(...events.filter((e) => e.type === 'exposure').map((e) => e.ts)),
    });
  });

  it('is idempotent by eventId: a replayed batch, or the same events cut into other batches, changes nothing', async () => {
    const experiment = `contract-${run}-b`;
    const events = experimentData({ experiment, variants: ['control', 'treatment'], units: 150, seed: 12, start: 1_760_000_000_000, spanMs: 600_000 });
    await put(events);
    const q = { experiment, metrics: METRICS, ends: [OPEN_END] };
    const once = await store.series(q);
    await put(events);
    await put(events.slice(0, 100));
    await put(events.slice(50, 400).reverse());
    expect(await store.series(q)).toEqual(once);
    expectMatches(once, 0, events, experiment, METRICS, Infinity);
  });

  it('starts each unit at its first exposure, even when that exposure arrives late, and leaves out units seen in two variants', async () => {
    const experiment = `contract-${run}-c`;
    const t = 1_760_000_000_000;
    const a = [{ experiment, variant: 'control' }];
    const b = [{ experiment, variant: 'treatment' }];
    await put([exposure(`c-${run}-1`, t + 1000, a), behaviour('click', `c-${run}-1`, t + 500), behaviour('click', `c-${run}-1`, t + 1000)]);
    let [row] = await store.series({ experiment, metrics: [{ kind: 'mean', event: 'click' }], ends: [OPEN_END] });
    expect(row).toMatchObject({ variant: 'control', units: 1, exposures: 1, metrics: [{ sum: 0 }] });
    // The clicks have no value (0 each): count them instead with a ratio over exposures.
    [row] = await store.series({ experiment, metrics: [{ kind: 'ratio', numerator: { event: 'click' }, denominator: { event: 'exposure' } }], ends: [OPEN_END] });
    expect(row!.metrics[0]).toMatchObject({ sum: 1, denSum: 1 });
    // An earlier exposure arrives late: the click at t+500 now counts.
    await put([exposure(`c-${run}-1`, t + 400, a)]);
    [row] = await store.series({ experiment, metrics: [{ kind: 'ratio', numerator: { event: 'click' }, denominator: { event: 'exposure' } }], ends: [OPEN_END] });
    expect(row!.metrics[0]).toMatchObject({ sum: 2, denSum: 2 });
    expect(row).toMatchObject({ units: 1, exposures: 2 });
    // The same unit then shows up in the other variant: it is no longer analysed at all.
    await put([exposure(`c-${run}-1`, t + 2000, b)]);
    expect(await store.series({ experiment, metrics: [], ends: [OPEN_END] })).toEqual([]);
  });

  it('analyses a ramped experiment by phase: each unit once, in the phase and variant of its first exposure, with its data before the next phase', async () => {
    const experiment = `contract-${run}-phases`;
    const start = 1_760_000_000_000;
    const hour = 3_600_000;
    const phaseStarts = [start + hour, start + 2 * hour];
    const events = rampedData({ experiment, units: 300, seed: 21, start, phaseStarts, weights: [[95, 5], [75, 25], [50, 50]] });
    await put(events);
    const ends = [start + hour / 2, start + 90 * 60_000, start + 150 * 60_000, OPEN_END];
    const rows = await store.series({ experiment, metrics: METRICS, ends, phaseStarts });
    ends.forEach((end, k) => expectMatches(rows, k, events, experiment, METRICS, end === OPEN_END ? Infinity : end, phaseStarts));
    const last = rows.filter((r) => r.bucket === ends.length - 1);
    // The data has every kind of unit: moved by a ramp, left out for two variants in one phase, in every phase.
    expect(last.reduce((a, r) => a + r.moved, 0)).toBeGreaterThan(10);
    expect(new Set(last.map((r) => r.phase))).toEqual(new Set([0, 1, 2]));
    const analysed = last.reduce((a, r) => a + r.units, 0);
    const exposed = new Set(events.filter((e) => e.type === 'exposure').map((e) => e.unitId)).size;
    expect(analysed).toBeLessThan(exposed);
    expect(analysed).toBeGreaterThan(exposed * 0.9);
    // Without phases, every unit a ramp moved is left out.
    const unphased = await store.series({ experiment, metrics: [], ends: [OPEN_END] });
    expect(unphased.reduce((a, r) => a + r.units, 0)).toBe(analysed - last.reduce((a, r) => a + r.moved, 0));
  });

  it('leaves out units first exposed while a ramp settles, so a gateway late to apply it makes no ratio mismatch', async () => {
    const experiment = `contract-${run}-settle`;
    const start = 1_760_000_000_000;
    const hour = 3_600_000;
    const phaseStarts = [start + hour, start + 2 * hour];
    const weights: [number, number][] = [[95, 5], [75, 25], [50, 50]];
    // The gateway assigns on each phase's weights only 20 minutes after the phase is recorded.
    const events = rampedData({ experiment, units: 3000, seed: 27, start, phaseStarts, weights, lag: 20 * 60_000 });
    await put(events);
    const srmOf = (rows: SeriesRow[]) =>
      srmAcrossGroups(weights.map((w, phase) => ({ counts: ['control', 'treatment'].map((v) => rows.find((r) => r.phase === phase && r.variant === v)?.units ?? 0), weights: w })));

    const unsettled = await store.series({ experiment, metrics: [], ends: [OPEN_END], phaseStarts });
    expect(srmOf(unsettled).mismatch).toBe(true);

    const settleMs = 25 * 60_000;
    const ends = [start + 90 * 60_000, OPEN_END];
    const rows = await store.series({ experiment, metrics: METRICS, ends, phaseStarts, phaseSettleMs: settleMs });
    ends.forEach((end, k) => expectMatches(rows, k, events, experiment, METRICS, end === OPEN_END ? Infinity : end, phaseStarts, undefined, settleMs));
    const last = rows.filter((r) => r.bucket === ends.length - 1);
    expect(srmOf(last).mismatch).toBe(false);
    expect(new Set(last.map((r) => r.phase))).toEqual(new Set([0, 1, 2]));
    const total = (list: SeriesRow[]) => list.reduce((a, r) => a + r.units, 0);
    expect(total(last)).toBeLessThan(total(unsettled) * 0.85);
  });

  it('carries CUPED covariates: each unit\'s metric over the window before its first exposure, also by phase', async () => {
    const experiment = `contract-${run}-cuped`;
    const start = 1_760_000_000_000;
    const hour = 3_600_000;
    const preWindowMs = 2 * hour;
    // Units with behaviour before their first exposure (inside and outside the window) and after.
    const events = rampedData({ experiment, units: 250, seed: 23, start, phaseStarts: [start + hour], weights: [[50, 50], [30, 70]], preHistory: 3 * hour });
    await put(events);
    const ends = [start + hour / 2, start + 90 * 60_000, OPEN_END];
    for (const phaseStarts of [undefined, [start + hour]]) {
      const rows = await store.series({ experiment, metrics: METRICS, ends, preWindowMs, ...(phaseStarts ? { phaseStarts } : {}) });
      ends.forEach((end, k) => expectMatches(rows, k, events, experiment, METRICS, end === OPEN_END ? Infinity : end, phaseStarts, preWindowMs));
      const last = rows.filter((r) => r.bucket === ends.length - 1);
      // The data does exercise it: units with a covariate in both kinds of metric.
      expect(last.every((r) => r.metrics[0]!.covariate!.sumX > 0 && r.metrics[1]!.covariate!.sumX > 0)).toBe(true);
    }
  });

  it('splits by an attribute of each unit\'s first exposure: every slice as the reference over its units, small ones as (other)', async () => {
    const experiment = `contract-${run}-slices`;
    const start = 1_760_000_000_000;
    const r = rng(21);
    // Countries with clearly different unit counts; a tenth of the units send no country.
    const countries = ['JP', 'JP', 'JP', 'JP', 'US', 'US', 'US', 'DE', 'DE', 'FR'];
    const countryOf = new Map<string, string | undefined>();
    const first = new Map<string, number>();
    const events = experimentData({ experiment, variants: ['control', 'treatment'], units: 600, seed: 13, start, spanMs: 3_600_000 }).map((e) => {
      if (e.type !== 'exposure') return e;
      if (!countryOf.has(e.unitId)) countryOf.set(e.unitId, r() < 0.1 ? undefined : countries[Math.floor(r() * countries.length)]);
      first.set(e.unitId, Math.min(first.get(e.unitId) ?? Infinity, e.ts));
      const country = countryOf.get(e.unitId);
      return country === undefined ? e : { ...e, attributes: { country, tier: 'gold' } };
    });
    // A later exposure in another country does not move the unit: its first exposure decides.
    const moved = [...first].slice(0, 20).map(([unitId, ts]) => ({ ...events.find((e) => e.type === 'exposure' && e.unitId === unitId)!, eventId: `${unitId}-later`, ts: ts + 1, attributes: { country: 'BR' } }));
    await put([...events, ...moved]);
    const all = [...events, ...moved];

    const sliced = await store.slices({ experiment, metrics: METRICS, ends: [OPEN_END], slice: { attribute: 'country', top: 2 } });
    const sliceOf = (unitId: string) => {
      const c = countryOf.get(unitId);
      return c === undefined ? '(none)' : c === 'JP' || c === 'US' ? c : '(other)';
    };
    expect(sliced.map((s) => s.value).sort()).toEqual(['(none)', '(other)', 'JP', 'US']);
    for (const { value, rows } of sliced) {
      expectMatches(rows, 0, all.filter((e) => sliceOf(e.unitId) === value), experiment, METRICS, Infinity);
    }
    // Most units first.
    const units = sliced.map((s) => s.rows.reduce((a, row) => a + row.units, 0));
    expect(units).toEqual([...units].sort((a, b) => b - a));
    // Slices add up to the whole experiment.
    const whole = await store.series({ experiment, metrics: METRICS, ends: [OPEN_END] });
    expect(units.reduce((a, b) => a + b, 0)).toBe(whole.reduce((a, row) => a + row.units, 0));
  });

  it('keeps values that look like SQL as plain data (queries are parameterised)', async () => {
    const experiment = `contract-${run}-d`;
    const unitId = `x'); DROP TABLE events; --\\ "${run}`;
    await put([exposure(unitId, 1000, [{ experiment, variant: 'control' }], { attributes: { note: "it's" } }), behaviour('click', unitId, 2000)]);
    const [row] = await store.series({ experiment, metrics: [{ kind: 'proportion', event: 'click' }], ends: [OPEN_END] });
    expect(row).toMatchObject({ variant: 'control', units: 1, metrics: [{ count: 1, sum: 1 }] });
    expect(await store.countEvents()).toBeGreaterThan(0);
  });

  it('answers an experiment without data with no rows and no span', async () => {
    expect(await store.span(`contract-${run}-none`)).toBeNull();
    expect(await store.series({ experiment: `contract-${run}-none`, metrics: METRICS, ends: [OPEN_END] })).toEqual([]);
  });
});
