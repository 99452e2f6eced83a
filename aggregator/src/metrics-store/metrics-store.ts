import type { Event } from '@bunryu/core';

/**
 * The MetricsStore port (SPEC §4, §9): where consumed events land and where per-variant
 * aggregates come from. One adapter (ClickHouse through @clickhouse/client) runs over two
 * connections: chdb in-process (the embedded default) or a ClickHouse server at CLICKHOUSE_URL.
 */
/**
 * The JSON text of an event that passed core's `Event` schema (sent to the store as is). Only the
 * text is kept: holding thousands of parsed objects until the insert is done costs more garbage
 * collection than parsing one again in the rare case it is needed.
 */
export interface StoredEvent {
  readonly eventId: string;
  readonly json: string;
}

/** For callers holding an event object. */
export function storedEvent(event: Event): StoredEvent {
  return { eventId: event.eventId, json: JSON.stringify(event) };
}

export interface MetricsStore {
  /**
   * Makes the events durable and queryable; resolves only then. Idempotent by `eventId`: inserting
   * an event again, in any batch, never changes an aggregate.
   */
  insert(events: readonly StoredEvent[]): Promise<void>;
  /** First and last exposure time of an experiment's analysed units; null when it has none. */
  span(experiment: string): Promise<{ firstTs: number; lastTs: number } | null>;
  /** Cumulative per-variant aggregates of `metrics` at each bucket end (see SeriesQuery). */
  series(query: SeriesQuery): Promise<SeriesRow[]>;
  /** The query's rows per value of its `slice` attribute (required), most units first. */
  slices(query: SeriesQuery & { slice: NonNullable<SeriesQuery['slice']> }): Promise<SliceRows[]>;
  /** Per variant: its exposures by how they were served, and percentiles of their latency (SPEC §11). */
  exposureFacts(experiment: string): Promise<ExposureFacts[]>;
  /**
   * The interleaving tally of an experiment: each `click` event naming a served request's
   * `requestId` and one of its `itemId`s credits the variant that contributed that item (once per
   * request and item); per unit, the variant with more credits is preferred.
   */
  interleaving(experiment: string, variants: readonly [string, string], click: string): Promise<InterleavingFacts>;
  /** The shadow pairs of a route, each once, with the compared outputs of the newest `newest` pairs. */
  shadow(route: string, newest: number): Promise<ShadowFacts>;
  /** Per behaviour event type: events since `sinceTs` (by event time), those marked as missing the catalogue, and the last event time ever. */
  eventVolume(sinceTs: number): Promise<EventVolume[]>;
  /** Resolves when the store answers (for /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface EventVolume {
  type: string;
  /** Distinct events since the window's start. */
  events: number;
  /** Of those, marked by a gateway under the `warn` policy (SPEC §16). */
  undeclared: number;
  invalid: number;
  /** The latest event time of this type, in the window or before. */
  lastTs: number;
}

export interface EventRef {
  event: string;
  /** 'value' sums the events' values; absent counts the events. */
  field?: 'value';
}

/** What the store computes per unit, then aggregates per variant (SPEC §5). */
export type MetricSpec =
  | { kind: 'proportion'; event: string }
  | { kind: 'mean'; event: string }
  | { kind: 'ratio'; numerator: EventRef; denominator: EventRef }
  | { kind: 'error_rate' }
  | { kind: 'latency_ms' };

/** The largest timestamp an open-ended last bucket ends at (the end of JavaScript dates). */
export const OPEN_END = 8_640_000_000_000_000;

export interface SeriesQuery {
  experiment: string;
  metrics: readonly MetricSpec[];
  /**
   * Bucket ends in ms, ascending. Bucket k holds every unit first exposed before ends[k] with its
   * events before ends[k] (cumulative). A last end of OPEN_END takes everything.
   */
  ends: readonly number[];
  /**
   * Start times (ms, ascending) of the experiment's phases after the first (ADR 0009): each
   * weight change starts one. A unit is analysed in the phase of its first exposure, with its
   * data before the next phase starts. Absent or empty: one phase.
   */
  phaseStarts?: readonly number[];
  /**
   * Units first exposed within this long (ms) after one of `phaseStarts` are left out: assigned
   * while gateways were still applying the ramp, some on the old weights, they belong to neither
   * phase. The cut is by time alone, so it leaves both variants' units alike. Absent: 0.
   */
  phaseSettleMs?: number;
  /**
   * CUPED's pre-exposure window (ms): when set, proportion and mean metrics also carry each
   * unit's covariate, the same metric over its events in the window before its first exposure.
   */
  preWindowMs?: number;
  /**
   * Splits every row by a unit attribute (SPEC §11 slices): the value of `attribute` on the unit's
   * first exposure; the `top` values with the most units are kept, the rest are `(other)`, and
   * units whose first exposure lacks it are `(none)`. Answered straight from the per-unit sets.
   */
  slice?: { attribute: string; top: number };
  /**
   * Keeps only the units whose every exposure was answered by the variant they were assigned (no
   * route or model fallback): SPEC §11's "as served" figures, biased by construction since
   * fallbacks are not random. Answered straight from the per-unit sets.
   */
  servedAsAssigned?: boolean;
}

/** Rows of a sliced series (SeriesQuery.slice), per attribute value. */
export interface SliceRows {
  value: string;
  rows: SeriesRow[];
}

/** Slice values for units outside the kept values, and for units without the attribute. */
export const OTHER_SLICE = '(other)';
export const NO_SLICE = '(none)';

/**
 * Per-unit values aggregated over a variant's units. Variances are sample variances (n − 1).
 * For ratios, `sum`/`mean`/`variance` describe the per-unit numerator, the `den*` fields the
 * denominator and `covariance` their sample covariance.
 */
export interface MetricAggregate {
  /** Units the metric is defined for: every analysed unit, except units without latency for latency_ms. */
  units: number;
  /** Units with at least one counted event (proportion: converted units). */
  count: number;
  sum: number;
  mean: number;
  variance: number;
  denSum?: number;
  denMean?: number;
  denVariance?: number;
  covariance?: number;
  /** With SeriesQuery.preWindowMs, for proportion and mean: Σx, Σx² of the covariate and Σxy. */
  covariate?: { sumX: number; sumX2: number; sumXY: number };
}

export interface SeriesRow {
  /** Index into SeriesQuery.ends. */
  bucket: number;
  /** The units' phase: 0, or the number of SeriesQuery.phaseStarts at or before their first exposure. */
  phase: number;
  variant: string;
  /** Of `units`, those a later ramp moved to another variant (counted here, with their data before it). */
  moved: number;
  /** Distinct analysed units (first exposed before the bucket end). */
  units: number;
  /** Distinct exposure events of those units before the bucket end. */
  exposures: number;
  /** Newest event time among those units' counted data (ms; 0 when none). */
  lastTs: number;
  /** One per SeriesQuery.metrics, in order. */
  metrics: MetricAggregate[];
}

/** A latency percentile with its 95% interval. */
export interface Percentile {
  p: number;
  value: number;
  ci95: [number, number];
}

export interface ExposureFacts {
  variant: string;
  /** Distinct exposure events. */
  exposures: number;
  /** Of those, answered by the route's fallback and by the model-server's fallback version. */
  routeFallback: number;
  modelFallback: number;
  /** Exposures with a latency, and its p50, p95 and p99. */
  latency: { n: number; percentiles: Percentile[] };
}

export const PERCENTILES = [0.5, 0.95, 0.99] as const;

/** A route's shadow pairs (SPEC §13): sums for the paired figures, and the newest pairs' compared outputs. */
export interface ShadowFacts {
  pairs: number;
  primaryErrors: number;
  shadowErrors: number;
  /** Σ and Σ² of (shadow error − primary error) per pair, each error 0 or 1. */
  errorDiffSum: number;
  errorDiffSq: number;
  primaryLatencySum: number;
  shadowLatencySum: number;
  /** Σ and Σ² of (shadow latency − primary latency) per pair, in ms. */
  latencyDiffSum: number;
  latencyDiffSq: number;
  /** The compared outputs of the newest pairs (at most the asked number), newest first. */
  outputs: { primary: unknown; shadow: unknown }[];
}

/** Clicks credited to the teams of an interleaving experiment (SPEC §13), per unit. */
export interface InterleavingFacts {
  /** Interleaved requests (exposures carrying the merged list), and their distinct units. */
  requests: number;
  units: number;
  /** Units with at least one credited click. */
  clickedUnits: number;
  /** Per variant: units whose items from that variant drew more credited clicks than the other's. */
  preferred: Record<string, number>;
}

