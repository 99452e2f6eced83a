/**
 * ClickHouse schema of the metrics store (docs/adr/0002-metrics-storage.md, 0010-results-by-row.md).
 *
 * - `events`: every consumed event as it came (its columns are the event's JSON fields, so the
 *   validated JSON is inserted as is), one row per delivery; ReplacingMergeTree keyed by event id
 *   so merges drop redelivered copies (queries never depend on that).
 * - `unit_exposures`: per (experiment, unit), maintained by a materialized view: first exposure
 *   time, the variant of that first exposure and every variant seen. Idempotent aggregates (min,
 *   max, argMin, set union): merging a redelivered batch again yields the same state.
 * - `event_rows`: per event, by a materialized view, the few columns the analysis reads: one row
 *   with `experiment = ''` for every event, and for an exposure one more per assignment (its
 *   variant, latency and status). ReplacingMergeTree ordered by (experiment, type, ts, event key):
 *   the analysis reads it with FINAL, so a redelivered copy is never counted twice whether or not
 *   parts have merged. Events arrive roughly in time order, so a new part overlaps the others only
 *   in its own recent span and FINAL merges little more than that span.
 *
 * Which events count for an experiment (at or after the unit's first exposure) is decided at
 * query time, because a late exposure can move the first exposure earlier.
 */
/** The rows `event_rows` holds for the events of `events` (the view's query, and the backfill's). */
export const EVENT_ROWS = `
  SELECT a.1 AS experiment, type, ts, cityHash64(eventId) AS eventKey, unitId, a.2 AS variant,
    if(a.1 = '', ifNull(value, 0.), ifNull(latencyMs, -1.)) AS value,
    if(a.1 = '', toUInt16(0), ifNull(status, toUInt16(0))) AS status
  FROM events
  ARRAY JOIN arrayConcat([('', '')], if(type = 'exposure', arrayMap(x -> (x.experiment, x.variant), assignments), [])) AS a`;

export const SCHEMA: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS events (
    eventId String,
    type LowCardinality(String),
    ts Int64,
    unitId String,
    route LowCardinality(String),
    requestId String,
    assignments Array(Tuple(experiment String, variant String)),
    value Nullable(Float64),
    latencyMs Nullable(Float64),
    status Nullable(UInt16),
    attributes Map(String, String),
    ingestedAt DateTime64(3) DEFAULT now64(3)
  ) ENGINE = ReplacingMergeTree
  ORDER BY (type, unitId, eventId)`,

  `CREATE TABLE IF NOT EXISTS unit_exposures (
    experiment LowCardinality(String),
    unitId String,
    firstTs SimpleAggregateFunction(min, Int64),
    lastTs SimpleAggregateFunction(max, Int64),
    variantState AggregateFunction(argMin, String, Tuple(Int64, String)),
    variantsSeen SimpleAggregateFunction(groupUniqArrayArray, Array(String))
  ) ENGINE = AggregatingMergeTree
  ORDER BY (experiment, unitId)`,

  `CREATE MATERIALIZED VIEW IF NOT EXISTS unit_exposures_mv TO unit_exposures AS
  SELECT
    a.experiment AS experiment,
    unitId,
    min(ts) AS firstTs,
    max(ts) AS lastTs,
    argMinState(a.variant, (ts, eventId)) AS variantState,
    groupUniqArray(a.variant) AS variantsSeen
  FROM events
  ARRAY JOIN assignments AS a
  WHERE type = 'exposure'
  GROUP BY experiment, unitId`,

  // The event key is a 64-bit hash of the event id; two events collapse only if they also share
  // experiment, type and millisecond. Missing values are 0, missing latency -1, missing status 0.
  `CREATE TABLE IF NOT EXISTS event_rows (
    experiment LowCardinality(String),
    type LowCardinality(String),
    ts Int64,
    eventKey UInt64,
    unitId String,
    variant LowCardinality(String),
    value Float64,
    status UInt16
  ) ENGINE = ReplacingMergeTree
  ORDER BY (experiment, type, ts, eventKey)`,

  `CREATE MATERIALIZED VIEW IF NOT EXISTS event_rows_mv TO event_rows AS ${EVENT_ROWS}`,

  // Earlier versions kept per-unit sets of events; event_rows replaces them.
  `DROP VIEW IF EXISTS unit_events_mv`,
  `DROP TABLE IF EXISTS unit_events`,
];
