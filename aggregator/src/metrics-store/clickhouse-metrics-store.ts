import type { ClickHouseClient } from '@clickhouse/client';
import { PERCENTILES, type EventVolume, type ExposureFacts, type MetricAggregate, type MetricsStore, type SeriesQuery, type SeriesRow, type StoredEvent } from './metrics-store.ts';
import { SCHEMA } from './schema.ts';
import { buildSeriesQuery } from './series-query.ts';

/** A decimal string (`-12.5`) as an integer in units of 10^-scale: exact. */
export function decimalUnits(text: unknown, scale: number): bigint {
  const s = String(text ?? '0');
  const negative = s.startsWith('-');
  const [whole = '0', fraction = ''] = (negative ? s.slice(1) : s).split('.');
  const units = BigInt(whole + fraction.padEnd(scale, '0').slice(0, scale));
  return negative ? -units : units;
}

const E12 = 1e12;
const E24 = 1e24;

/** Exact running sums of one metric over a variant's units (Σ at scale 12, squares and products at 24). */
interface Sums {
  units: number;
  count: number;
  sum: bigint;
  sq: bigint;
  dsum: bigint;
  dsq: bigint;
  xd: bigint;
  /** CUPED's covariate, when asked for: Σx (scale 12), Σx² and Σxy (scale 24). */
  cx?: { sum: bigint; sq: bigint; xy: bigint };
}

const newSums = (): Sums => ({ units: 0, count: 0, sum: 0n, sq: 0n, dsum: 0n, dsq: 0n, xd: 0n });

/** Sample variance (n − 1) of n values from Σx and Σx²: n·Σx² − (Σx)² is formed exactly, nothing cancels. */
function variance(n: number, sum: bigint, sq: bigint): number {
  return n > 1 ? Number(BigInt(n) * sq - sum * sum) / E24 / (n * (n - 1)) : NaN;
}

/**
 * Mean, variance and covariance from exact sums: the answer depends only on the data, not on the
 * order it was summed in (replays, merges and threads change that order).
 */
function aggregate(s: Sums, ratio: boolean): MetricAggregate {
  const total = Number(s.sum) / E12;
  const a: MetricAggregate = { units: s.units, count: s.count, sum: total, mean: s.units > 0 ? total / s.units : NaN, variance: variance(s.units, s.sum, s.sq) };
  if (ratio) {
    const den = Number(s.dsum) / E12;
    a.denSum = den;
    a.denMean = s.units > 0 ? den / s.units : NaN;
    a.denVariance = variance(s.units, s.dsum, s.dsq);
    a.covariance = s.units > 1 ? Number(BigInt(s.units) * s.xd - s.sum * s.dsum) / E24 / (s.units * (s.units - 1)) : NaN;
  }
  if (s.cx) a.covariate = { sumX: Number(s.cx.sum) / E12, sumX2: Number(s.cx.sq) / E24, sumXY: Number(s.cx.xy) / E24 };
  return a;
}

/** ClickHouse returns 64-bit integers as strings and NaN as null in JSON. */
function num(v: unknown): number {
  if (v === null || v === undefined) return NaN;
  return typeof v === 'number' ? v : Number(v);
}

/**
 * The ClickHouse adapter of the MetricsStore port, over any @clickhouse/client connection: chdb
 * in-process (`createChdbConnection`) or a server URL, made by `clickhouse-client.ts` (whose JSON
 * encoder passes strings through). It creates its schema on `open()`.
 */
export interface StoreOptions {
  /**
   * ClickHouse's `max_memory_usage` for each analysis query (bytes): a query that would need more
   * fails with an error instead of growing the process until it swaps.
   */
  maxQueryMemoryBytes?: number;
}

/** The default cap of an analysis query's memory. */
export const DEFAULT_QUERY_MEMORY_BYTES = 8 * 2 ** 30;

export class ClickHouseMetricsStore implements MetricsStore {
  private constructor(
    private readonly client: ClickHouseClient,
    private readonly maxQueryMemoryBytes: number,
  ) {}

  static async open(client: ClickHouseClient, options: StoreOptions = {}): Promise<ClickHouseMetricsStore> {
    for (const statement of SCHEMA) await client.command({ query: statement });
    return new ClickHouseMetricsStore(client, options.maxQueryMemoryBytes ?? DEFAULT_QUERY_MEMORY_BYTES);
  }

  /**
   * The events' JSON goes in as it came (the table's columns are the event's fields): no
   * re-serialisation, which is a third of the ingest cost. Attribute values that are numbers or
   * booleans are read as strings.
   */
  async insert(events: readonly StoredEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.client.insert({
      table: 'events',
      values: events.map((e) => e.json),
      format: 'JSONEachRow',
      clickhouse_settings: { input_format_json_read_numbers_as_strings: 1, input_format_json_read_bools_as_strings: 1 },
    });
  }

  async span(experiment: string): Promise<{ firstTs: number; lastTs: number } | null> {
    const rs = await this.client.query({
      query: `SELECT count() AS n, min(firstTs) AS firstTs, max(lastTs) AS lastTs FROM unit_exposures WHERE experiment = {experiment:String}`,
      query_params: { experiment },
      format: 'JSONEachRow',
    });
    const [row] = await rs.json<{ n: string | number; firstTs: string | number; lastTs: string | number }>();
    if (!row || num(row.n) === 0) return null;
    return { firstTs: num(row.firstTs), lastTs: num(row.lastTs) };
  }

  async series(query: SeriesQuery): Promise<SeriesRow[]> {
    if (query.ends.length === 0) return [];
    const built = buildSeriesQuery(query);
    const rs = await this.client.query({
      query: built.sql,
      query_params: built.params,
      format: 'JSONEachRow',
      clickhouse_settings: { output_format_json_quote_decimals: 1, max_memory_usage: String(this.maxQueryMemoryBytes) },
    });
    const rows = await rs.json<Record<string, unknown>>();
    // The query returns each (phase, variant)'s changes in the buckets where something changed;
    // the figures at a bucket end are the changes accumulated up to it.
    interface Running {
      phase: number;
      variant: string;
      units: number;
      moved: number;
      exposures: number;
      lastTs: number;
      metrics: Sums[];
      first: number;
    }
    const running = new Map<string, Running>();
    const changes = new Map<string, Map<number, Record<string, unknown>>>();
    for (const r of rows) {
      const [phase, variant] = [num(r.phase), String(r.variant)];
      const id = JSON.stringify([phase, variant]);
      const bucket = num(r.bucket);
      if (!changes.has(id)) changes.set(id, new Map());
      changes.get(id)!.set(bucket, r);
      const at = running.get(id);
      if (!at || bucket < at.first) running.set(id, { phase, variant, units: 0, moved: 0, exposures: 0, lastTs: 0, metrics: built.columns.map(newSums), first: bucket });
    }
    const ids = [...running.keys()].sort((a, b) => running.get(a)!.phase - running.get(b)!.phase || (running.get(a)!.variant < running.get(b)!.variant ? -1 : 1));
    const out: SeriesRow[] = [];
    for (let bucket = 0; bucket < query.ends.length; bucket++) {
      for (const id of ids) {
        const at = running.get(id)!;
        if (bucket < at.first) continue;
        const r = changes.get(id)!.get(bucket);
        if (r) {
          at.units += num(r.units);
          at.moved += num(r.moved);
          at.exposures += num(r.exposures);
          at.lastTs = Math.max(at.lastTs, num(r.lastTs));
          built.columns.forEach((c, j) => {
            const m = at.metrics[j]!;
            m.units += num(r[`${c}_units`]);
            m.count += num(r[`${c}_count`]);
            m.sum += decimalUnits(r[`${c}_sum`], 12);
            m.sq += decimalUnits(r[`${c}_sq`], 24);
            if (r[`${c}_cxsum`] !== undefined) {
              m.cx ??= { sum: 0n, sq: 0n, xy: 0n };
              m.cx.sum += decimalUnits(r[`${c}_cxsum`], 12);
              m.cx.sq += decimalUnits(r[`${c}_cxsq`], 24);
              m.cx.xy += decimalUnits(r[`${c}_cxy`], 24);
            }
            if (query.metrics[j]!.kind === 'ratio') {
              m.dsum += decimalUnits(r[`${c}_dsum`], 12);
              m.dsq += decimalUnits(r[`${c}_dsq`], 24);
              m.xd += decimalUnits(r[`${c}_xd`], 24);
            }
          });
        }
        out.push({
          bucket,
          phase: at.phase,
          variant: at.variant,
          units: at.units,
          moved: at.moved,
          exposures: at.exposures,
          lastTs: at.lastTs,
          metrics: at.metrics.map((m, j) => aggregate(m, query.metrics[j]!.kind === 'ratio')),
        });
      }
    }
    return out;
  }

  /**
   * Each exposure once (by event id), per variant. A percentile is the order statistic at
   * ⌈n·p⌉; its 95% interval is the distribution-free one between the order statistics at
   * n·p ∓ 1.96·√(n·p·(1 − p)) (the binomial count of exposures below the true percentile), which
   * takes exposures as independent draws of the variant's latency.
   */
  async exposureFacts(experiment: string): Promise<ExposureFacts[]> {
    const rs = await this.client.query({
      query: `
WITH per_exposure AS (
  SELECT a.variant AS variant, eventId, any(fallback) AS served, any(latencyMs) AS latency
  FROM events ARRAY JOIN assignments AS a
  WHERE type = 'exposure' AND a.experiment = {experiment:String}
  GROUP BY a.variant, eventId
),
per_variant AS (
  SELECT variant, count() AS exposures, countIf(served = 'route') AS routeFallback, countIf(served = 'model') AS modelFallback,
    arraySort(groupArrayIf(assumeNotNull(latency), latency IS NOT NULL)) AS s, length(s) AS n
  FROM per_exposure
  GROUP BY variant
)
SELECT variant, exposures, routeFallback, modelFallback, n,
  if(n = 0, [], arrayMap(p -> [
    s[toUInt64(greatest(1, ceil(n * p)))],
    s[toUInt64(greatest(1, floor(n * p - 1.959963984540054 * sqrt(n * p * (1 - p)))))],
    s[toUInt64(least(toFloat64(n), ceil(n * p + 1.959963984540054 * sqrt(n * p * (1 - p))) + 1))]
  ], {levels:Array(Float64)})) AS q
FROM per_variant
ORDER BY variant`,
      query_params: { experiment, levels: [...PERCENTILES] },
      format: 'JSONEachRow',
    });
    const rows = await rs.json<{ variant: string; exposures: string | number; routeFallback: string | number; modelFallback: string | number; n: string | number; q: number[][] }>();
    return rows.map((r) => ({
      variant: r.variant,
      exposures: num(r.exposures),
      routeFallback: num(r.routeFallback),
      modelFallback: num(r.modelFallback),
      latency: { n: num(r.n), percentiles: r.q.map((t, i) => ({ p: PERCENTILES[i]!, value: t[0]!, ci95: [t[1]!, t[2]!] as [number, number] })) },
    }));
  }

  /**
   * Volume per behaviour type for the events page (SPEC §16). Last seen comes from the per-unit
   * rollup, which is small; the window's counts read only its rows, deduplicated by event id.
   */
  async eventVolume(sinceTs: number): Promise<EventVolume[]> {
    const rs = await this.client.query({
      query: `
SELECT s.type AS type, s.lastTs AS lastTs, w.n AS n, w.undeclared AS undeclared, w.invalid AS invalid
FROM (SELECT type, max(lastTs) AS lastTs FROM unit_events WHERE type != 'exposure' GROUP BY type) AS s
LEFT JOIN (
  SELECT type, uniqExact(eventId) AS n,
    uniqExactIf(eventId, catalogue = 'undeclared') AS undeclared,
    uniqExactIf(eventId, catalogue = 'invalid') AS invalid
  FROM events WHERE type != 'exposure' AND ts >= {since:Int64}
  GROUP BY type
) AS w ON w.type = s.type
ORDER BY type`,
      query_params: { since: sinceTs },
      format: 'JSONEachRow',
    });
    const rows = await rs.json<{ type: string; lastTs: string | number; n: string | number; undeclared: string | number; invalid: string | number }>();
    return rows.map((r) => ({ type: r.type, lastTs: num(r.lastTs), events: num(r.n), undeclared: num(r.undeclared), invalid: num(r.invalid) }));
  }

  /** Rows in the raw table (every delivery, before merges drop copies): what the benchmark polls. */
  async countEvents(): Promise<number> {
    const rs = await this.client.query({ query: 'SELECT count() AS n FROM events', format: 'JSONEachRow' });
    const [row] = await rs.json<{ n: string }>();
    return num(row?.n);
  }

  async ping(): Promise<void> {
    const r = await this.client.ping();
    if (!r.success) throw r.error;
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
