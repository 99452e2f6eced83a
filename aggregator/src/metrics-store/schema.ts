/**
 * ClickHouse schema of the metrics store (docs/adr/0002-metrics-storage.md).
 *
 * - `events`: every consumed event as it came (its columns are the event's JSON fields, so the
 *   validated JSON is inserted as is), one row per delivery; ReplacingMergeTree keyed by event id
 *   so merges drop redelivered copies (queries never depend on that).
 * - `unit_exposures`: per (experiment, unit), maintained by a materialized view: first exposure
 *   time, the variant of that first exposure, every variant seen, and the set of exposures.
 * - `unit_events`: per (event type, unit), maintained by a materialized view: the set of events
 *   (time, id, value).
 *
 * Every rollup column is an idempotent aggregate (min, max, argMin, set union): merging a
 * redelivered batch again yields the same state, so results never change on redelivery, and
 * reads need no FINAL. Which events count for an experiment (at or after the unit's first
 * exposure) is decided at query time from these sets, because a late exposure can move the first
 * exposure earlier.
 */
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
    variantsSeen SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    exposureSet AggregateFunction(groupUniqArray, Tuple(Int64, String, Float64, UInt16))
  ) ENGINE = AggregatingMergeTree
  ORDER BY (experiment, unitId)`,

  // Missing latency is stored as -1 and missing status as 0 so the set's tuples compare exactly.
  `CREATE MATERIALIZED VIEW IF NOT EXISTS unit_exposures_mv TO unit_exposures AS
  SELECT
    a.experiment AS experiment,
    unitId,
    min(ts) AS firstTs,
    max(ts) AS lastTs,
    argMinState(a.variant, (ts, eventId)) AS variantState,
    groupUniqArray(a.variant) AS variantsSeen,
    groupUniqArrayState((ts, eventId, ifNull(latencyMs, -1.), ifNull(status, toUInt16(0)))) AS exposureSet
  FROM events
  ARRAY JOIN assignments AS a
  WHERE type = 'exposure'
  GROUP BY experiment, unitId`,

  `CREATE TABLE IF NOT EXISTS unit_events (
    type LowCardinality(String),
    unitId String,
    lastTs SimpleAggregateFunction(max, Int64),
    eventSet AggregateFunction(groupUniqArray, Tuple(Int64, String, Float64))
  ) ENGINE = AggregatingMergeTree
  ORDER BY (type, unitId)`,

  `CREATE MATERIALIZED VIEW IF NOT EXISTS unit_events_mv TO unit_events AS
  SELECT
    type,
    unitId,
    max(ts) AS lastTs,
    groupUniqArrayState((ts, eventId, ifNull(value, 0.))) AS eventSet
  FROM events
  GROUP BY type, unitId`,
];
