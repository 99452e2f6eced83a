import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { decimalUnits, newSums, type Change, type Sums } from './changes.ts';
import { OPEN_END, type SeriesQuery } from './metrics-store.ts';
import { buildSeriesQuery, type PerUnitLayout } from './series-query.ts';

/**
 * The fold (ADR 0013): per (phase, variant, minute), the exact sums of each unit's changes, kept
 * in the store so that a query reads rows per minute instead of every event.
 *
 * A fold answers one query's shape (experiment, metrics, phases, pre-exposure window) at every
 * set of bucket ends on the minute grid. Before it answers, a refresh recomputes whole every unit
 * that has data inserted since the last refresh (from before the oldest insert of this process
 * still running then, and `overlapMs` earlier for other writers' inserts): it cancels the unit's previous contribution and writes the new one. Recomputing
 * is idempotent, so a redelivered event changes nothing and a late exposure moves the unit's
 * start as it does in the direct query; the cost of a refresh grows with the events of the
 * units it touches, not with every event ever seen.
 *
 * A fold lives as long as this process uses it; rows of folds nobody refreshed for `maxIdleMs`
 * (this process's idle ones, and those of a process that stopped) are deleted.
 */
export interface FoldOptions {
  overlapMs: number;
  maxIdleMs: number;
  /**
   * The share of a fold's units with new rows above which a new build replaces it: a refresh
   * recomputes each such unit and also reads and cancels its old row, so past about a fifth of
   * the units it costs more than the build (and a build runs in the background).
   */
  rebuildShare: number;
}

export const DEFAULT_FOLD_OPTIONS: FoldOptions = { overlapMs: 5_000, maxIdleMs: 3_600_000, rebuildShare: 0.2 };

const MINUTE = 60_000;

/** A fold answers every query of one shape, whatever its bucket ends. */
const foldKey = (query: SeriesQuery): string => JSON.stringify([query.experiment, query.metrics, query.phaseStarts ?? [], query.phaseSettleMs ?? 0, query.preWindowMs ?? 0]);

/** Whether a query's ends lie on the minute grid (the open last end aside): what a fold can answer. */
export function foldable(ends: readonly number[]): boolean {
  return ends.every((e, k) => (e === OPEN_END && k === ends.length - 1) || (Number.isSafeInteger(e) && e % MINUTE === 0));
}

interface Fold {
  id: string;
  /** Insert time (ms, the store's clock) the last refresh covered; 0 before the first. */
  watermark: number;
  /** Units the build wrote: the measure of a refresh that would cost more than a new build. */
  units: number;
  usedAt: number;
  /** The running refresh, which every caller in the meantime waits for. */
  refreshing?: Promise<void>;
  /** Set when a refresh failed part-way: the fold's sums can no longer be trusted. */
  broken?: boolean;
}

/** The expressions of one change row's integer and decimal sums, and how to read them back. */
interface SumsLayout {
  ints: string[];
  decs: string[];
}

export class Folds {
  private readonly folds = new Map<string, Fold>();
  private closed = false;
  private sequence = 0;
  /** Start times of this process's inserts still running: their rows may turn visible after a refresh's bound. */
  private readonly inserting = new Set<{ startedAt: number }>();

  /** Runs an insert of this process's, so that no refresh's bound passes it while it runs. */
  async tracked<T>(insert: () => Promise<T>): Promise<T> {
    const entry = { startedAt: Date.now() };
    this.inserting.add(entry);
    try {
      return await insert();
    } finally {
      this.inserting.delete(entry);
    }
  }

  constructor(
    private readonly client: ClickHouseClient,
    private readonly options: FoldOptions,
    /** ClickHouse's `max_memory_usage` of each query reading or writing folds. */
    private readonly maxMemoryBytes: number,
  ) {}

  /**
   * The query's changes per (phase, variant, bucket), from its fold, refreshed first; undefined
   * while the fold is being built, for the caller to answer straight from the per-unit sets. A
   * build costs a few direct queries, so the asks during it are answered as they were before
   * folds existed instead of waiting for it. A refresh that would recompute more than
   * `rebuildShare` of the fold's units costs more than a build: the fold is then replaced by a
   * new one, built in the background, and this ask too is answered directly.
   */
  async changes(query: SeriesQuery): Promise<Change[] | undefined> {
    if (this.closed) return undefined;
    const key = foldKey(query);
    const fold = this.folds.get(key);
    if (!fold || fold.broken) return void (await this.build(key, query));
    fold.usedAt = Date.now();
    if (fold.watermark === 0) return undefined;
    // One refresh at a time; a caller arriving during one waits for the next, which sees its data.
    while (fold.refreshing) await fold.refreshing.catch(() => undefined);
    if (this.folds.get(key) !== fold) return undefined;
    const refreshing = this.refresh(fold, query);
    fold.refreshing = refreshing.then(() => undefined);
    let outcome: 'done' | 'too-many';
    try {
      outcome = await refreshing;
    } finally {
      fold.refreshing = undefined;
    }
    if (outcome === 'done') return this.read(fold, query);
    await this.build(key, query);
    // The old fold's rows are deleted once its successor is built (or failed): not on this ask's time.
    void this.folds.get(key)!.refreshing?.catch(() => undefined).finally(() => this.drop(fold.id).catch(() => undefined));
    return undefined;
  }

  /** Starts building a new fold for the query's shape in the background, in place of any before it. */
  private async build(key: string, query: SeriesQuery): Promise<void> {
    await this.sweep();
    const fold: Fold = { id: BigInt.asUintN(64, BigInt(`0x${randomBytes(8).toString('hex')}`)).toString(), watermark: 0, units: 0, usedAt: Date.now() };
    this.folds.set(key, fold);
    const building = this.refresh(fold, query).then(() => undefined);
    fold.refreshing = building;
    // A failed build marks the fold broken; the next ask starts another.
    void building.catch(() => undefined).finally(() => (fold.refreshing = undefined));
  }

  private async drop(id: string): Promise<void> {
    for (const table of ['fold_units', 'fold_sums']) await this.command(`ALTER TABLE ${table} DELETE WHERE foldId = {id:UInt64}`, { id });
  }

  /** Starts no more builds and waits for the running ones, so the store can close under none. */
  async close(): Promise<void> {
    this.closed = true;
    await this.settled();
  }

  /** Resolves once no fold is being built or refreshed (failures included): what tests and the bench wait for. */
  async settled(): Promise<void> {
    for (const fold of this.folds.values()) while (fold.refreshing) await fold.refreshing.catch(() => undefined);
  }

  /** Brings the fold up to date; 'too-many' (changing nothing) when too many of its units have new rows. */
  private async refresh(fold: Fold, query: SeriesQuery): Promise<'done' | 'too-many'> {
    const [now] = await this.rows<{ now: string }>('SELECT toUnixTimestamp64Milli(now64(3)) AS now', {});
    const bound = Math.min(Number(now!.now), ...[...this.inserting].map((i) => i.startedAt));
    const refresh = (BigInt(Date.now()) * 1000n + BigInt(this.sequence++ % 1000)).toString();
    const built = buildSeriesQuery(query, { units: 'SELECT unitId FROM fold_dirty WHERE refresh = {refresh:UInt64}' });
    const params = { ...built.params, fold: fold.id, refresh, from: fold.watermark - this.options.overlapMs, watermark: fold.watermark };
    const types = built.params.types as string[];
    // `fresh`: the unit has rows past the watermark, not only in the look-back before it (which a
    // refresh right after a build or rebuild always has: counting those would rebuild again).
    const dirty =
      fold.watermark === 0
        ? `SELECT DISTINCT unitId, 1 AS fresh FROM unit_exposures WHERE experiment = {experiment:String}`
        : `SELECT unitId, max(ingestedAt >= fromUnixTimestamp64Milli({watermark:Int64})) AS fresh FROM events
           WHERE ingestedAt >= fromUnixTimestamp64Milli({from:Int64})
             AND (type IN {types:Array(String)} OR (type = 'exposure' AND arrayExists(a -> a.1 = {experiment:String}, assignments)))
           GROUP BY unitId`;
    const sums = sumsLayout(query, built.layout);
    let units: number;
    try {
      await this.command(`INSERT INTO fold_dirty (refresh, unitId, fresh) SELECT {refresh:UInt64}, unitId, fresh FROM (${dirty})`, { ...params, types });
      const [counted] = await this.rows<{ n: string; fresh: string }>('SELECT count() AS n, countIf(fresh = 1) AS fresh FROM fold_dirty WHERE refresh = {refresh:UInt64}', { refresh });
      units = Number(counted!.n);
      if (fold.watermark > 0 && Number(counted!.fresh) > this.options.rebuildShare * fold.units) return 'too-many';
      // Take the dirty units' previous contributions out of the sums and cancel their rows, then
      // write the new rows and add them. The sums are fed from what each step read, not from
      // the table afterwards: merges may already have collapsed a cancelled pair.
      const previous = `SELECT foldId, unitId, phase, variant, moved, last, minutes, ints, decs, cx FROM fold_units FINAL
        WHERE foldId = {fold:UInt64} AND unitId IN (SELECT unitId FROM fold_dirty WHERE refresh = {refresh:UInt64})`;
      await this.command(addToSums(`SELECT *, toInt8(-1) AS sign FROM (${previous})`, sums), params);
      await this.command(`INSERT INTO fold_units SELECT foldId, unitId, {refresh:UInt64}, -1, phase, variant, moved, last, minutes, ints, decs, cx FROM (${previous})`, params);
      await this.command(
        `INSERT INTO fold_units
         SELECT {fold:UInt64}, unitId, {refresh:UInt64}, 1, phase, variant, moved, last, minutes, ints, decs, cx
         FROM (${built.sql})`,
        params,
      );
      await this.command(addToSums(`SELECT * FROM fold_units WHERE foldId = {fold:UInt64} AND refresh = {refresh:UInt64} AND sign = 1`, sums), params);
    } catch (err) {
      fold.broken = true;
      throw err;
    }
    if (fold.watermark === 0) fold.units = units;
    fold.watermark = bound;
    return 'done';
  }

  private async read(fold: Fold, query: SeriesQuery): Promise<Change[]> {
    const rows = await this.rows<{ phase: string | number; variant: string; minute: string | number; iv: (string | number)[]; dv: string[]; lastTs: string | number }>(
      `SELECT phase, variant, minute, sumForEachMerge(ints) AS iv, sumForEachMerge(decs) AS dv, max(last) AS lastTs
       FROM fold_sums WHERE foldId = {fold:UInt64}
       GROUP BY phase, variant, minute`,
      { fold: fold.id },
    );
    const ends = query.ends;
    /** The first bucket whose end is at or after the minute's end (the ends are on the minute grid). */
    const bucketOf = (minute: number): number => {
      const end = (minute + 1) * MINUTE;
      let [lo, hi] = [0, ends.length - 1];
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (ends[mid]! >= end) hi = mid;
        else lo = mid + 1;
      }
      return ends[lo]! >= end ? lo : -1;
    };
    const byBucket = new Map<string, Change>();
    for (const r of rows) {
      const iv = r.iv.map(Number);
      const dv = r.dv.map((d) => decimalUnits(d, 24));
      // A minute whose contributions were all cancelled holds no unit.
      if (iv.every((v) => v === 0) && dv.every((v) => v === 0n)) continue;
      const bucket = bucketOf(Number(r.minute));
      if (bucket < 0) continue;
      const [phase, variant] = [Number(r.phase), r.variant];
      const id = JSON.stringify([phase, variant, bucket]);
      let c = byBucket.get(id);
      if (!c) {
        c = { bucket, phase, variant, units: 0, moved: 0, exposures: 0, lastTs: 0, metrics: query.metrics.map(newSums) };
        byBucket.set(id, c);
      }
      c.units += iv[0]!;
      c.moved += iv[1]!;
      c.exposures += iv[2]!;
      c.lastTs = Math.max(c.lastTs, Number(r.lastTs));
      let [i, d] = [3, 0];
      const E12 = 10n ** 12n;
      query.metrics.forEach((m, j) => {
        const s: Sums = c.metrics[j]!;
        s.units += iv[i++]!;
        s.count += iv[i++]!;
        s.sum += dv[d++]! / E12;
        s.sq += dv[d++]!;
        if (m.kind === 'ratio') {
          s.dsum += dv[d++]! / E12;
          s.dsq += dv[d++]!;
          s.xd += dv[d++]!;
        }
        if (query.preWindowMs && (m.kind === 'proportion' || m.kind === 'mean')) {
          s.cx ??= { sum: 0n, sq: 0n, xy: 0n };
          s.cx.sum += dv[d++]! / E12;
          s.cx.sq += dv[d++]!;
          s.cx.xy += dv[d++]!;
        }
      });
    }
    return [...byBucket.values()];
  }

  /** Deletes the rows of folds refreshed by nobody for maxIdleMs, and forgets this process's idle ones. */
  private async sweep(): Promise<void> {
    const cutoff = Date.now() - this.options.maxIdleMs;
    for (const [key, fold] of this.folds) if (fold.usedAt < cutoff && !fold.refreshing) this.folds.delete(key);
    const idle = await this.rows<{ foldId: string }>(
      `SELECT toString(foldId) AS foldId FROM fold_units GROUP BY foldId HAVING max(intDiv(refresh, 1000)) < {cutoff:Int64}`,
      { cutoff },
    );
    const ids = idle.map((r) => r.foldId).filter((id) => ![...this.folds.values()].some((f) => f.id === id));
    if (ids.length === 0) return;
    for (const table of ['fold_units', 'fold_sums']) {
      await this.command(`ALTER TABLE ${table} DELETE WHERE foldId IN {ids:Array(UInt64)}`, { ids });
    }
  }

  private async command(query: string, params: Record<string, unknown>): Promise<void> {
    await this.client.command({ query: query.startsWith('INSERT') ? capped(query, this.maxMemoryBytes) : query, query_params: params });
  }

  private async rows<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
    const rs = await this.client.query({ query: capped(query, this.maxMemoryBytes), query_params: params, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_decimals: 1 } });
    return rs.json<T>();
  }
}

/**
 * The memory cap as the query's own SETTINGS clause: chdb applies `clickhouse_settings` as session
 * SETs, which would stay on for every later query of the process.
 */
export function capped(query: string, maxMemoryBytes: number): string {
  return `${query}\nSETTINGS max_memory_usage = ${Math.floor(maxMemoryBytes)}`;
}

/** Adds the changes of the per-unit rows `rows` (with their `sign`) to the sums. */
function addToSums(rows: string, sums: SumsLayout): string {
  return `INSERT INTO fold_sums
    SELECT foldId, phase, variant, minute, sumForEachState(iv), sumForEachState(dv), max(lv)
    FROM (
      SELECT foldId, phase, variant, minute, CAST([${sums.ints.join(', ')}], 'Array(Int64)') AS iv,
        CAST([${sums.decs.join(', ')}], 'Array(Decimal256(24))') AS dv, if(sign > 0, last, 0) AS lv
      FROM (${rows})
      ARRAY JOIN minutes AS minute, arrayEnumerate(minutes) AS pos
    )
    GROUP BY foldId, phase, variant, minute`;
}

/**
 * The sums one unit's row adds at each of its minutes, times its sign: the same changes the
 * direct query sums (series-query.ts step 4), in a fixed order that `read` follows.
 * Integers: units appearing, moved, exposures, then per metric its units and count.
 * Decimals (scale 24): per metric Σx, Σx², for ratios Σd, Σd², Σxd, with a covariate Σc, Σc², Σcy.
 */
function sumsLayout(query: SeriesQuery, layout: PerUnitLayout): SumsLayout {
  const intAt = (name: string) => layout.ints.indexOf(name) + 1;
  const decAt = (name: string) => layout.decs.indexOf(name) + 1;
  const int = (name: string) => `ints[${intAt(name)}][pos]`;
  const intPrev = (name: string) => `if(pos = 1, 0, ints[${intAt(name)}][pos - 1])`;
  const dec = (name: string) => `toDecimal256(decs[${decAt(name)}][pos], 12)`;
  const decPrev = (name: string) => `if(pos = 1, toDecimal256(0, 12), toDecimal256(decs[${decAt(name)}][pos - 1], 12))`;
  const signed = (x: string) => `sign * (${x})`;
  const d24 = (x: string) => `toDecimal256(sign * (${x}), 24)`;
  const ints = [signed('pos = 1'), signed('pos = 1 AND moved'), signed(`${int('nx')} - ${intPrev('nx')}`)];
  const decs: string[] = [];
  query.metrics.forEach((m, j) => {
    const c = `m${j}`;
    const has = `${int(`${c}_has`)} - ${intPrev(`${c}_has`)}`;
    ints.push(signed(m.kind === 'latency_ms' ? has : 'pos = 1'), signed(has));
    const [x, xp] = [dec(`${c}_x`), decPrev(`${c}_x`)];
    decs.push(d24(`${x} - ${xp}`), d24(`${x} * ${x} - ${xp} * ${xp}`));
    if (m.kind === 'ratio') {
      const [y, yp] = [dec(`${c}_d`), decPrev(`${c}_d`)];
      decs.push(d24(`${y} - ${yp}`), d24(`${y} * ${y} - ${yp} * ${yp}`), d24(`${x} * ${y} - ${xp} * ${yp}`));
    }
    if (query.preWindowMs && (m.kind === 'proportion' || m.kind === 'mean')) {
      const cx = `toDecimal256(cx[${j + 1}], 12)`;
      decs.push(d24(`if(pos = 1, ${cx}, toDecimal256(0, 12))`), d24(`if(pos = 1, ${cx} * ${cx}, toDecimal256(0, 24))`), d24(`${cx} * (${x} - ${xp})`));
    }
  });
  return { ints, decs };
}
