import type { ClickHouseClient } from '@clickhouse/client';
import type { MetricAggregate, MetricsStore, SeriesQuery, SeriesRow, StoredEvent } from './metrics-store.ts';
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

/**
 * Mean, sample variance and covariance from exact sums (Σx at scale 12, Σx², Σxy at scale 24):
 * n·Σx² − (Σx)² is formed exactly in integers, so nothing cancels and the answer depends only on
 * the data, not on the order it was summed in.
 */
function moments(n: number, sum: unknown, sq: unknown): { sum: number; mean: number; variance: number; units: bigint } {
  const s = decimalUnits(sum, 12);
  const q = decimalUnits(sq, 24);
  const total = Number(s) / E12;
  return {
    units: s,
    sum: total,
    mean: n > 0 ? total / n : NaN,
    variance: n > 1 ? Number(BigInt(n) * q - s * s) / E24 / (n * (n - 1)) : NaN,
  };
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
export class ClickHouseMetricsStore implements MetricsStore {
  private constructor(private readonly client: ClickHouseClient) {}

  static async open(client: ClickHouseClient): Promise<ClickHouseMetricsStore> {
    for (const statement of SCHEMA) await client.command({ query: statement });
    return new ClickHouseMetricsStore(client);
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
      clickhouse_settings: { output_format_json_quote_decimals: 1 },
    });
    const rows = await rs.json<Record<string, unknown>>();
    return rows.map((r) => ({
      bucket: num(r.bucket),
      variant: String(r.variant),
      units: num(r.units),
      exposures: num(r.exposures),
      lastTs: num(r.lastTs),
      metrics: built.columns.map((c, j): MetricAggregate => {
        const units = num(r[`${c}_units`]);
        const x = moments(units, r[`${c}_sum`], r[`${c}_sq`]);
        const aggregate: MetricAggregate = { units, count: num(r[`${c}_count`]), sum: x.sum, mean: x.mean, variance: x.variance };
        if (query.metrics[j]!.kind === 'ratio') {
          const d = moments(units, r[`${c}_dsum`], r[`${c}_dsq`]);
          const xd = decimalUnits(r[`${c}_xd`], 24);
          aggregate.denSum = d.sum;
          aggregate.denMean = d.mean;
          aggregate.denVariance = d.variance;
          aggregate.covariance = units > 1 ? Number(BigInt(units) * xd - x.units * d.units) / E24 / (units * (units - 1)) : NaN;
        }
        return aggregate;
      }),
    }));
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
