import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Event } from '@bunryu/core';
import { chdbClient } from '../src/metrics-store/clickhouse-client.ts';
import { ClickHouseMetricsStore } from '../src/metrics-store/clickhouse-metrics-store.ts';
import { OPEN_END, storedEvent, type SeriesQuery, type SeriesRow } from '../src/metrics-store/metrics-store.ts';
import { behaviour, experimentData, exposure, rampedData } from './support/events.ts';
import { METRICS, near, reference } from './support/reference.ts';

/**
 * The fold (ADR 0013) against the direct query and the reference, on bucket ends on the minute
 * grid (what the fold answers), across the changes a fold must absorb after it was built: more
 * data, a redelivered batch, a late first exposure into a bucket already answered, a unit that
 * turns up in a second variant.
 */
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** On the minute grid, as planBuckets' ends are. */
const START = 29_333_340 * MINUTE;

describe('the fold answers as the direct query does', () => {
  let folded: ClickHouseMetricsStore;
  let direct: ClickHouseMetricsStore;
  let client: ReturnType<typeof chdbClient>;
  let path: string;
  const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const put = (events: Event[]) => folded.insert(events.map(storedEvent));
  /**
   * Both stores read the same database; the fold's answer must equal the direct one exactly. The
   * first ask of a shape is answered directly while its fold is built; once built, the fold answers.
   */
  const same = async (q: SeriesQuery): Promise<SeriesRow[]> => {
    const whileBuilding = await folded.series(q);
    await folded.foldsSettled();
    const [a, b] = [await folded.series(q), await direct.series(q)];
    expect(a).toEqual(b);
    expect(whileBuilding).toEqual(b);
    return a;
  };

  beforeAll(async () => {
    path = mkdtempSync(join(tmpdir(), 'bunryu-fold-'));
    client = chdbClient(path);
    // Every refresh takes exactly the rows inserted since the last (this store makes them all, so
    // no look-back for other writers) and is never replaced by a rebuild, however many units it
    // touches: these tests are about what a refresh must absorb.
    folded = await ClickHouseMetricsStore.open(client, { fold: { overlapMs: 0, rebuildShare: Infinity } });
    direct = await ClickHouseMetricsStore.open(chdbClient(path), { fold: false });
  });
  afterAll(async () => {
    await folded?.close();
    await direct?.close();
  });

  it('at every bucket end, equal to the reference, with phases and CUPED covariates', async () => {
    const experiment = `fold-${run}-a`;
    const phaseStarts = [START + HOUR];
    const events = rampedData({ experiment, units: 300, seed: 31, start: START, phaseStarts, weights: [[50, 50], [30, 70]], preHistory: 2 * HOUR });
    await put(events);
    const ends = [START + 30 * MINUTE, START + 90 * MINUTE, START + 2 * HOUR, OPEN_END];
    for (const extra of [{}, { phaseStarts }, { phaseStarts, preWindowMs: 2 * HOUR }]) {
      const rows = await same({ experiment, metrics: METRICS, ends, ...extra });
      ends.forEach((end, k) => {
        const want = reference(events, experiment, METRICS, end === OPEN_END ? Infinity : end, extra.phaseStarts, (extra as { preWindowMs?: number }).preWindowMs);
        const got = rows.filter((r) => r.bucket === k);
        expect(got.length).toBe(want.size);
        for (const r of got) {
          const w = want.get(extra.phaseStarts ? `${r.phase}:${r.variant}` : r.variant)!;
          expect({ units: r.units, exposures: r.exposures }).toEqual({ units: w.units, exposures: w.exposures });
          r.metrics.forEach((m, j) => expect(near(m.sum, w.metrics[j]!.sum) && near(m.variance, w.metrics[j]!.variance), `metric ${j}`).toBe(true));
        }
      });
    }
  });

  it('takes in data that arrives after it was built, and is unchanged by a redelivered batch', async () => {
    const experiment = `fold-${run}-b`;
    const events = experimentData({ experiment, variants: ['control', 'treatment'], units: 300, seed: 32, start: START, spanMs: 3 * HOUR });
    const q = { experiment, metrics: METRICS, ends: [START + HOUR, START + 2 * HOUR, OPEN_END] };
    await put(events.slice(0, 600));
    await same(q);
    await put(events.slice(600));
    const all = await same(q);
    await put(events.slice(100, 900));
    expect(await same(q)).toEqual(all);
  });

  it('moves a unit into an earlier bucket when an earlier exposure arrives after that bucket was answered', async () => {
    const experiment = `fold-${run}-c`;
    const a = [{ experiment, variant: 'control' }];
    const unit = `fold-${run}-late`;
    const q = { experiment, metrics: [{ kind: 'proportion', event: 'click' } as const], ends: [START + 10 * MINUTE, START + 20 * MINUTE, OPEN_END] };
    await put([exposure(`fold-${run}-other`, START + MINUTE, a), exposure(unit, START + 15 * MINUTE, a), behaviour('click', unit, START + 5 * MINUTE)]);
    let rows = await same(q);
    expect(rows.find((r) => r.bucket === 0)).toMatchObject({ units: 1, metrics: [{ count: 0 }] });
    await put([exposure(unit, START + 2 * MINUTE, a)]);
    rows = await same(q);
    expect(rows.find((r) => r.bucket === 0)).toMatchObject({ units: 2, exposures: 2, metrics: [{ count: 1 }] });
    // Seen in a second variant: left out, as the direct query does.
    await put([exposure(unit, START + 30 * MINUTE, [{ experiment, variant: 'treatment' }])]);
    rows = await same(q);
    expect(rows.find((r) => r.bucket === 2)).toMatchObject({ units: 1, exposures: 1 });
  });

  it('is built in the background from the first ask, then refreshed by each ask for the units with new rows only', async () => {
    const experiment = `fold-${run}-e`;
    const events = experimentData({ experiment, variants: ['control', 'treatment'], units: 200, seed: 34, start: START, spanMs: HOUR });
    const q = { experiment, metrics: METRICS, ends: [START + HOUR, OPEN_END] };
    // No look-back for other writers' inserts (this store makes them all): a refresh takes exactly the units with new rows.
    const store = await ClickHouseMetricsStore.open(chdbClient(path), { fold: { overlapMs: 0 } });
    await store.insert(events.map(storedEvent));
    /** Per unit, the refresh that wrote its current contribution (merges may have collapsed cancelled pairs by now). */
    const writtenBy = async () => {
      const rs = await client.query({
        query: `SELECT unitId, toString(max(refresh)) AS r FROM fold_units WHERE sign = 1 AND unitId LIKE {prefix:String} GROUP BY unitId`,
        query_params: { prefix: `${experiment}-%` },
        format: 'JSONEachRow',
      });
      return new Map((await rs.json<{ unitId: string; r: string }>()).map((x) => [x.unitId, x.r]));
    };
    await store.series(q);
    await store.foldsSettled();
    // One row per analysed unit (a unit seen in two variants is left out and has none).
    const variants = new Map<string, Set<string>>();
    for (const e of events) for (const a of e.type === 'exposure' ? e.assignments : []) variants.set(e.unitId, (variants.get(e.unitId) ?? new Set()).add(a.variant));
    const analysed = [...variants].filter(([, v]) => v.size === 1).map(([unitId]) => unitId);
    const built = await writtenBy();
    expect([...built.keys()].sort()).toEqual([...analysed].sort());
    expect(new Set(built.values()).size).toBe(1);
    // Two units get new data: the next ask recomputes those two, cancelling their previous rows.
    const [u1, u2] = analysed;
    await store.insert([behaviour('click', u1!, START + 2 * HOUR), behaviour('dwell', u2!, START + 2 * HOUR, { value: 3 })].map(storedEvent));
    expect(await store.series(q)).toEqual(await direct.series(q));
    const after = await writtenBy();
    expect([...after].filter(([unitId, r]) => r !== built.get(unitId)).map(([unitId]) => unitId).sort()).toEqual([u1, u2].sort());
    await store.close();
  });

  it('is replaced by a new fold, built in the background, when new rows touch too many of its units', async () => {
    const experiment = `fold-${run}-f`;
    const events = experimentData({ experiment, variants: ['control', 'treatment'], units: 200, seed: 35, start: START, spanMs: HOUR });
    const q = { experiment, metrics: METRICS, ends: [START + HOUR, OPEN_END] };
    const store = await ClickHouseMetricsStore.open(chdbClient(path), { fold: { overlapMs: 0, rebuildShare: 0.2 } });
    const foldOf = async () => {
      const rs = await client.query({ query: `SELECT toString(argMax(foldId, refresh)) AS id FROM fold_units WHERE unitId LIKE {prefix:String}`, query_params: { prefix: `${experiment}-%` }, format: 'JSONEachRow' });
      return (await rs.json<{ id: string }>())[0]!.id;
    };
    await store.insert(events.slice(0, 300).map(storedEvent));
    await store.series(q);
    await store.foldsSettled();
    const first = await foldOf();
    // A few units with new rows: refreshed in place.
    await store.insert([behaviour('click', `${experiment}-u1`, START + 2 * HOUR)].map(storedEvent));
    expect(await store.series(q)).toEqual(await direct.series(q));
    expect(await foldOf()).toBe(first);
    // Most units with new rows: this ask is answered directly while a new fold is built.
    await store.insert(events.slice(300).map(storedEvent));
    expect(await store.series(q)).toEqual(await direct.series(q));
    await store.foldsSettled();
    expect(await store.series(q)).toEqual(await direct.series(q));
    expect(await foldOf()).not.toBe(first);
    await store.close();
  });

  it('leaves ends off the minute grid to the direct query, with the same figures', async () => {
    const experiment = `fold-${run}-d`;
    const events = experimentData({ experiment, variants: ['control', 'treatment'], units: 100, seed: 33, start: START, spanMs: HOUR });
    await put(events);
    const rows = await folded.series({ experiment, metrics: METRICS, ends: [START + 1234, OPEN_END] });
    expect(rows).toEqual(await direct.series({ experiment, metrics: METRICS, ends: [START + 1234, OPEN_END] }));
  });
});
