/**
 * ClickHouse schema of the metrics store (docs/adr/0002-metrics-storage.md).
 *
 * - `events`: every consumed event as it came (its columns are the event's JSON fields, so the
 *   validated JSON is inserted as is), one row per delivery; ReplacingMergeTree keyed by event id
 *   so merges drop redelivered copies (queries never depend on that).
 * - `unit_exposures`: per (experiment, unit), maintained by a materialized view: first exposure
 *   time, the variant of that first exposure, every variant seen, and the set of exposures.
 * - `unit_events`: per (event type, unit), maintained by a materialized view: the set of events
 *   (time, id, value), for every type but `shadow`.
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
    fallback LowCardinality(String) DEFAULT '',
    attributes Map(String, String),
    catalogue LowCardinality(String) DEFAULT '',
    ingestedAt DateTime64(3) DEFAULT now64(3)
  ) ENGINE = ReplacingMergeTree
  ORDER BY (type, unitId, eventId)`,
  // Stores made before exposures said how they were served.
  `ALTER TABLE events ADD COLUMN IF NOT EXISTS fallback LowCardinality(String) DEFAULT '' AFTER status`,
  // Stores made before interleaving (SPEC §13): the item a behaviour event names, and an
  // interleaved exposure's merged list with the variant that contributed each item.
  `ALTER TABLE events ADD COLUMN IF NOT EXISTS itemId String DEFAULT '' AFTER attributes`,
  `ALTER TABLE events ADD COLUMN IF NOT EXISTS interleaving Tuple(experiment String, items Array(String), teams Array(String)) AFTER itemId`,
  // Stores made before shadow traffic (SPEC §13): a shadow event's pair, as its JSON text.
  `ALTER TABLE events ADD COLUMN IF NOT EXISTS shadow String DEFAULT '' AFTER interleaving`,
  // Stores made before gateways marked events that miss the event catalogue (SPEC §16).
  `ALTER TABLE events ADD COLUMN IF NOT EXISTS catalogue LowCardinality(String) DEFAULT '' AFTER attributes`,

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

  // Shadow pairs are read from `events` by route, never per unit. (Stores made before this view
  // have `unit_events_mv`, which kept them too: see RETIRED_VIEWS.)
  `CREATE MATERIALIZED VIEW IF NOT EXISTS unit_events_v2_mv TO unit_events AS
  SELECT
    type,
    unitId,
    max(ts) AS lastTs,
    groupUniqArrayState((ts, eventId, ifNull(value, 0.))) AS eventSet
  FROM events
  WHERE type != 'shadow'
  GROUP BY type, unitId`,

  // The fold (ADR 0013): which rows arrived since a fold's last refresh is read by insert time;
  // parts are written roughly in that order, so the index skips the old ones.
  `ALTER TABLE events ADD INDEX IF NOT EXISTS ingested ingestedAt TYPE minmax GRANULARITY 1`,

  /** The units a refresh recomputes, kept only while it runs. */
  `CREATE TABLE IF NOT EXISTS fold_dirty (
    refresh UInt64,
    unitId String,
    at DateTime DEFAULT now()
  ) ENGINE = MergeTree
  ORDER BY (refresh, unitId)
  TTL at + INTERVAL 1 HOUR`,
  // Stores made before a refresh told new rows from its look-back.
  `ALTER TABLE fold_dirty ADD COLUMN IF NOT EXISTS fresh UInt8 DEFAULT 1 AFTER unitId`,

  // Each unit's last contribution to a fold: its per-unit arrays over the minutes it is active
  // in. A refresh cancels a unit's previous row (sign -1) and writes its new one (sign 1).
  `CREATE TABLE IF NOT EXISTS fold_units (
    foldId UInt64,
    unitId String,
    refresh UInt64,
    sign Int8,
    phase UInt32,
    variant String,
    moved UInt8,
    last Int64,
    minutes Array(Int64),
    ints Array(Array(Int64)),
    decs Array(Array(Decimal128(12))),
    cx Array(Decimal128(12))
  ) ENGINE = CollapsingMergeTree(sign)
  ORDER BY (foldId, unitId)`,

  // Per (phase, variant, minute), the exact sums of the units' changes: what a query reads.
  `CREATE TABLE IF NOT EXISTS fold_sums (
    foldId UInt64,
    phase UInt32,
    variant String,
    minute Int64,
    ints AggregateFunction(sumForEach, Array(Int64)),
    decs AggregateFunction(sumForEach, Array(Decimal256(24))),
    last SimpleAggregateFunction(max, Int64)
  ) ENGINE = AggregatingMergeTree
  ORDER BY (foldId, phase, variant, minute)`,
];

/**
 * Views of stores made before, each dropped after its successor in SCHEMA exists (an insert
 * meanwhile goes through both, which the rollups' set unions make harmless). What a retired view
 * wrote that its successor would not is then deleted while any is left (`leftover` counts it, by
 * the table's primary key), so an aggregator stopped between the drop and the delete finishes
 * the move at its next start.
 */
export const RETIRED_VIEWS: readonly { view: string; leftover: string; cleanup: string }[] = [
  { view: 'unit_events_mv', leftover: `SELECT count() AS n FROM unit_events WHERE type = 'shadow'`, cleanup: `ALTER TABLE unit_events DELETE WHERE type = 'shadow'` },
];
