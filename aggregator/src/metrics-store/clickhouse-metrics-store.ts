import type { ClickHouseClient } from '@clickhouse/client';
import { GATEWAY_EVENT_TYPES } from '@bunryu/core';
import { PERCENTILES, type EventVolume, type ExposureFacts, type InterleavingFacts, type ShadowFacts, type MetricsStore, type SeriesQuery, type SeriesRow, type SliceRows, type StoredEvent } from './metrics-store.ts';
import { RETIRED_VIEWS, SCHEMA } from './schema.ts';
import { buildSeriesQuery } from './series-query.ts';
import { accumulate, decimalUnits, newSums, type Change, type Sums } from './changes.ts';
import { DEFAULT_FOLD_OPTIONS, Folds, capped, foldable, type FoldOptions } from './fold.ts';

/** ClickHouse returns 64-bit integers as strings and NaN as null in JSON. */
function num(v: unknown): number {
  if (v === null || v === undefined) return NaN;
  return typeof v === 'number' ? v : Number(v);
}

/** The `n` of a query answering one row. */
async function count(client: ClickHouseClient, query: string): Promise<number> {
  const rs = await client.query({ query, format: 'JSONEachRow' });
  const [row] = await rs.json<{ n: string | number }>();
  return num(row?.n);
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
  /** The fold of ADR 0013; `false` answers every query straight from the per-unit sets. */
  fold?: Partial<FoldOptions> | false;
}

/** The default cap of an analysis query's memory. */
export const DEFAULT_QUERY_MEMORY_BYTES = 8 * 2 ** 30;

export class ClickHouseMetricsStore implements MetricsStore {
  private readonly folds?: Folds;

  private constructor(
    private readonly client: ClickHouseClient,
    private readonly maxQueryMemoryBytes: number,
    fold: Partial<FoldOptions> | false,
  ) {
    if (fold !== false) this.folds = new Folds(client, { ...DEFAULT_FOLD_OPTIONS, ...fold }, maxQueryMemoryBytes);
  }

  static async open(client: ClickHouseClient, options: StoreOptions = {}): Promise<ClickHouseMetricsStore> {
    for (const statement of SCHEMA) await client.command({ query: statement });
    for (const { view, leftover, cleanup } of RETIRED_VIEWS) {
      await client.command({ query: `DROP VIEW IF EXISTS ${view}` });
      if ((await count(client, leftover)) > 0) await client.command({ query: cleanup });
    }
    return new ClickHouseMetricsStore(client, options.maxQueryMemoryBytes ?? DEFAULT_QUERY_MEMORY_BYTES, options.fold ?? {});
  }

  /**
   * The events' JSON goes in as it came (the table's columns are the event's fields): no
   * re-serialisation, which is a third of the ingest cost. Attribute values that are numbers or
   * booleans are read as strings.
   */
  async insert(events: readonly StoredEvent[]): Promise<void> {
    if (events.length === 0) return;
    const insert = () =>
      this.client.insert({
        table: 'events',
        values: events.map((e) => e.json),
        format: 'JSONEachRow',
        clickhouse_settings: { input_format_json_read_numbers_as_strings: 1, input_format_json_read_bools_as_strings: 1 },
      });
    await (this.folds ? this.folds.tracked(insert) : insert());
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

  /**
   * Through the query's fold when its ends lie on the minute grid (ADR 0013), else (and while
   * that fold is first built) straight from the per-unit sets (ADR 0008): the same figures
   * either way.
   */
  async series(query: SeriesQuery): Promise<SeriesRow[]> {
    if (query.ends.length === 0) return [];
    const changes = (this.folds && foldable(query.ends) && !query.slice && !query.servedAsAssigned ? await this.folds.changes(query) : undefined) ?? (await this.direct(query));
    return accumulate(changes, query.metrics, query.ends.length);
  }

  async slices(query: SeriesQuery & { slice: NonNullable<SeriesQuery['slice']> }): Promise<SliceRows[]> {
    if (query.ends.length === 0) return [];
    const bySlice = new Map<string, Change[]>();
    for (const c of await this.direct(query)) {
      const value = c.slice!;
      bySlice.set(value, [...(bySlice.get(value) ?? []), c]);
    }
    const out = [...bySlice].map(([value, changes]) => ({ value, rows: accumulate(changes, query.metrics, query.ends.length) }));
    const units = (s: SliceRows) => s.rows.filter((r) => r.bucket === query.ends.length - 1).reduce((a, r) => a + r.units, 0);
    return out.sort((a, b) => units(b) - units(a) || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  }

  /** Resolves once no fold is being built or refreshed: what tests and the bench wait for. */
  async foldsSettled(): Promise<void> {
    await this.folds?.settled();
  }

  private async direct(query: SeriesQuery): Promise<Change[]> {
    const built = buildSeriesQuery(query);
    const rs = await this.client.query({
      query: capped(built.sql, this.maxQueryMemoryBytes),
      query_params: built.params,
      format: 'JSONEachRow',
      clickhouse_settings: { output_format_json_quote_decimals: 1 },
    });
    const rows = await rs.json<Record<string, unknown>>();
    return rows.map((r) => ({
      ...(query.slice ? { slice: String(r.slice) } : {}),
      bucket: num(r.bucket),
      phase: num(r.phase),
      variant: String(r.variant),
      units: num(r.units),
      moved: num(r.moved),
      exposures: num(r.exposures),
      lastTs: num(r.lastTs),
      metrics: built.columns.map((c, j) => {
        const m: Sums = {
          ...newSums(),
          units: num(r[`${c}_units`]),
          count: num(r[`${c}_count`]),
          sum: decimalUnits(r[`${c}_sum`], 12),
          sq: decimalUnits(r[`${c}_sq`], 24),
        };
        if (r[`${c}_cxsum`] !== undefined) m.cx = { sum: decimalUnits(r[`${c}_cxsum`], 12), sq: decimalUnits(r[`${c}_cxsq`], 24), xy: decimalUnits(r[`${c}_cxy`], 24) };
        if (query.metrics[j]!.kind === 'ratio') {
          m.dsum = decimalUnits(r[`${c}_dsum`], 12);
          m.dsq = decimalUnits(r[`${c}_dsq`], 24);
          m.xd = decimalUnits(r[`${c}_xd`], 24);
        }
        return m;
      }),
    }));
  }

  /**
   * Each exposure once (FINAL collapses redelivered copies: an event id has one sorting key), per
   * variant. A percentile is the order statistic at ⌈n·p⌉; its 95% interval is the
   * distribution-free one between the order statistics at n·p ∓ 1.96·√(n·p·(1 − p)) (the binomial
   * count of exposures below the true percentile), which takes exposures as independent draws of
   * the variant's latency. The ranks are written out per level rather than mapped over the levels:
   * a lambda would copy the sorted array for every level.
   */
  async exposureFacts(experiment: string): Promise<ExposureFacts[]> {
    const z = 1.959963984540054;
    const at = (rank: string) => `s[toUInt64(least(toFloat64(n), greatest(1, ${rank})))]`;
    const levels = PERCENTILES.map(
      (p) => `[${at(`ceil(n * ${p})`)}, ${at(`floor(n * ${p} - ${z} * sqrt(n * ${p} * (1 - ${p})))`)}, ${at(`ceil(n * ${p} + ${z} * sqrt(n * ${p} * (1 - ${p}))) + 1`)}]`,
    );
    const rs = await this.client.query({
      query: capped(`
SELECT variant, exposures, routeFallback, modelFallback, n, if(n = 0, [], [${levels.join(', ')}]) AS q
FROM (
  SELECT variant, count() AS exposures, countIf(fallback = 'route') AS routeFallback, countIf(fallback = 'model') AS modelFallback,
    arraySort(groupArrayIf(assumeNotNull(latencyMs), latencyMs IS NOT NULL)) AS s, length(s) AS n
  FROM (
    SELECT arrayFirst(a -> a.1 = {experiment:String}, assignments).2 AS variant, fallback, latencyMs
    FROM events FINAL
    WHERE type = 'exposure' AND arrayExists(a -> a.1 = {experiment:String}, assignments)
  )
  GROUP BY variant
)
ORDER BY variant`, this.maxQueryMemoryBytes),
      query_params: { experiment },
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

  async interleaving(experiment: string, variants: readonly [string, string], click: string): Promise<InterleavingFacts> {
    const rs = await this.client.query({
      query: capped(
        `
WITH
  served AS (
    SELECT requestId, any(unitId) AS unitId, any(interleaving.items) AS items, any(interleaving.teams) AS teams
    FROM events FINAL
    WHERE type = 'exposure' AND interleaving.experiment = {experiment:String} AND requestId != ''
    GROUP BY requestId
  ),
  credits AS (
    SELECT s.unitId AS unitId, s.teams[indexOf(s.items, c.itemId)] AS team
    FROM (
      SELECT DISTINCT requestId, itemId FROM events FINAL
      WHERE type = {click:String} AND itemId != '' AND requestId IN (SELECT requestId FROM served)
    ) AS c
    INNER JOIN served AS s ON c.requestId = s.requestId
    WHERE indexOf(s.items, c.itemId) > 0
  ),
  per_unit AS (
    SELECT unitId, countIf(team = {a:String}) AS a, countIf(team = {b:String}) AS b FROM credits GROUP BY unitId
  )
SELECT (SELECT count() FROM served) AS requests, (SELECT uniqExact(unitId) FROM served) AS units,
  count() AS clickedUnits, countIf(a > b) AS aWins, countIf(b > a) AS bWins
FROM per_unit`,
        this.maxQueryMemoryBytes,
      ),
      query_params: { experiment, click, a: variants[0], b: variants[1] },
      format: 'JSONEachRow',
    });
    const [r] = await rs.json<Record<string, string | number>>();
    return {
      requests: num(r?.requests),
      units: num(r?.units),
      clickedUnits: num(r?.clickedUnits),
      preferred: { [variants[0]]: num(r?.aWins), [variants[1]]: num(r?.bWins) },
    };
  }

  async shadow(route: string, newest: number): Promise<ShadowFacts> {
    const pairs = `SELECT ts, shadow, ingestedAt FROM events FINAL WHERE type = 'shadow' AND route = {route:String} AND shadow != ''`;
    const sums = await this.client.query({
      query: capped(
        `
SELECT count() AS pairs, sum(ep) AS primaryErrors, sum(es) AS shadowErrors, sum(es - ep) AS errorDiffSum, sum((es - ep) * (es - ep)) AS errorDiffSq,
  sum(lp) AS primaryLatencySum, sum(ls) AS shadowLatencySum, sum(ls - lp) AS latencyDiffSum, sum((ls - lp) * (ls - lp)) AS latencyDiffSq,
  toString(max(ingestedAt)) AS bound
FROM (
  SELECT toInt64(JSONExtractInt(shadow, 'primary', 'status') >= 500) AS ep, toInt64(JSONExtractInt(shadow, 'shadow', 'status') >= 500) AS es,
    JSONExtractFloat(shadow, 'primary', 'latencyMs') AS lp, JSONExtractFloat(shadow, 'shadow', 'latencyMs') AS ls, ingestedAt
  FROM (${pairs})
)`,
        this.maxQueryMemoryBytes,
      ),
      query_params: { route },
      format: 'JSONEachRow',
    });
    const [r] = await sums.json<Record<string, string | number>>();
    // The outputs of the same pairs as the sums: none inserted after them.
    const outputs = await this.client.query({
      query: capped(
        `SELECT JSONExtractRaw(shadow, 'primary', 'output') AS p, JSONExtractRaw(shadow, 'shadow', 'output') AS s FROM (${pairs})
         WHERE ingestedAt <= toDateTime64({bound:String}, 3) ORDER BY ts DESC LIMIT {newest:UInt32}`,
        this.maxQueryMemoryBytes,
      ),
      query_params: { route, newest, bound: String(r?.bound ?? '1970-01-01 00:00:00.000') },
      format: 'JSONEachRow',
    });
    const parse = (raw: string): unknown => (raw === '' ? undefined : JSON.parse(raw));
    return {
      pairs: num(r?.pairs),
      primaryErrors: num(r?.primaryErrors),
      shadowErrors: num(r?.shadowErrors),
      errorDiffSum: num(r?.errorDiffSum),
      errorDiffSq: num(r?.errorDiffSq),
      primaryLatencySum: num(r?.primaryLatencySum),
      shadowLatencySum: num(r?.shadowLatencySum),
      latencyDiffSum: num(r?.latencyDiffSum),
      latencyDiffSq: num(r?.latencyDiffSq),
      outputs: (await outputs.json<{ p: string; s: string }>()).map((o) => ({ primary: parse(o.p), shadow: parse(o.s) })),
    };
  }

  /**
   * Volume per behaviour type for the events page (SPEC §16). Last seen comes from the per-unit
   * rollup, which is small; the window's counts read only its rows, deduplicated by event id.
   */
  async eventVolume(sinceTs: number): Promise<EventVolume[]> {
    const rs = await this.client.query({
      query: `
SELECT s.type AS type, s.lastTs AS lastTs, w.n AS n, w.undeclared AS undeclared, w.invalid AS invalid
FROM (SELECT type, max(lastTs) AS lastTs FROM unit_events WHERE type NOT IN {gateway:Array(String)} GROUP BY type) AS s
LEFT JOIN (
  SELECT type, uniqExact(eventId) AS n,
    uniqExactIf(eventId, catalogue = 'undeclared') AS undeclared,
    uniqExactIf(eventId, catalogue = 'invalid') AS invalid
  FROM events WHERE type NOT IN {gateway:Array(String)} AND ts >= {since:Int64}
  GROUP BY type
) AS w ON w.type = s.type
ORDER BY type`,
      query_params: { since: sinceTs, gateway: GATEWAY_EVENT_TYPES },
      format: 'JSONEachRow',
    });
    const rows = await rs.json<{ type: string; lastTs: string | number; n: string | number; undeclared: string | number; invalid: string | number }>();
    return rows.map((r) => ({ type: r.type, lastTs: num(r.lastTs), events: num(r.n), undeclared: num(r.undeclared), invalid: num(r.invalid) }));
  }

  /** Rows in the raw table (every delivery, before merges drop copies): what the benchmark polls. */
  async countEvents(): Promise<number> {
    return count(this.client, 'SELECT count() AS n FROM events');
  }

  async ping(): Promise<void> {
    const r = await this.client.ping();
    if (!r.success) throw r.error;
  }

  async close(): Promise<void> {
    await this.folds?.close();
    await this.client.close();
  }
}
