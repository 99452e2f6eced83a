import type { EventRef, MetricSpec, SeriesQuery } from './metrics-store.ts';

/**
 * The one analysis query (SPEC §4–§5), built from the metric kinds only: every value that comes
 * from outside (experiment key, event types, bucket ends) is a query parameter.
 *
 * 1. `units`: the experiment's units with their first exposure time `t0`, the variant of that
 *    exposure and their exposures. A unit seen in two variants is left out (it cannot be
 *    attributed; forced and holdout units never have exposures in the first place).
 * 2. `kept`: for each unit, the events of the metrics' types at or after `t0`.
 * 3. Each unit is repeated for every bucket end after its `t0` (ARRAY JOIN) and its per-unit
 *    metric values are computed from the events before that end.
 * 4. Aggregated per (variant, bucket): counts and exact sums of x, x² and x·y, from which the
 *    adapter derives means, sample variances and covariances.
 */
export interface BuiltSeriesQuery {
  sql: string;
  params: Record<string, unknown>;
  /** Result column prefix of each metric, in order. */
  columns: string[];
}

/** Event values are clamped to ±1e15 (no metric is that large) so exact decimal sums cannot overflow. */
const dec = (x: string) => `toDecimal128(least(greatest(${x}, -1e15), 1e15), 12)`;
const ZERO = 'toDecimal128(0, 12)';

export function buildSeriesQuery(q: SeriesQuery): BuiltSeriesQuery {
  const types: string[] = [];
  const typeIndex = (event: string): number => {
    let i = types.indexOf(event);
    if (i < 0) i = types.push(event) - 1;
    return i;
  };
  // Per-unit values over the ARRAY JOINed bucket end `E`, as Decimal128(12): exact, so a unit's
  // value does not depend on the order its events are stored in.
  const n = (i: number) => `arrayCount(x -> x.1 < E, e${i})`;
  const s = (i: number) => `arraySum(x -> if(x.1 < E, ${dec('x.2')}, ${ZERO}), e${i})`;
  const count = (c: string) => `toDecimal128(${c}, 12)`;
  const ref = (r: EventRef) => (r.field === 'value' ? s(typeIndex(r.event)) : count(n(typeIndex(r.event))));

  const perUnit: string[] = [];
  const aggregates: string[] = [];
  const columns: string[] = [];
  // Per variant: exact moments in Decimal256 (sums of x at scale 12, of x² and x·y at scale 24).
  // Integer sums are associative, so neither redelivery, merges nor threads can move a digit.
  const moments = (c: string, v: 'x' | 'd', cond?: string) => {
    const wide = `toDecimal256(${c}_${v}, 12)`;
    const agg = (e: string) => (cond ? `sumIf(${e}, ${cond})` : `sum(${e})`);
    const name = v === 'x' ? '' : 'd';
    return [`${agg(wide)} AS ${c}_${name}sum`, `${agg(`${wide} * ${wide}`)} AS ${c}_${name}sq`];
  };
  q.metrics.forEach((m: MetricSpec, j) => {
    const c = `m${j}`;
    columns.push(c);
    const basic = (x: string, has: string) => {
      perUnit.push(`${x} AS ${c}_x`, `${has} AS ${c}_has`);
      aggregates.push(`count() AS ${c}_units`, `countIf(${c}_has) AS ${c}_count`, ...moments(c, 'x'));
    };
    switch (m.kind) {
      case 'proportion': {
        const i = typeIndex(m.event);
        basic(count(`${n(i)} > 0`), `${n(i)} > 0`);
        break;
      }
      case 'mean': {
        const i = typeIndex(m.event);
        basic(s(i), `${n(i)} > 0`);
        break;
      }
      case 'error_rate':
        basic(count(`arrayExists(x -> x.1 < E AND x.4 >= 500, xs)`), `arrayExists(x -> x.1 < E AND x.4 >= 500, xs)`);
        break;
      case 'latency_ms': {
        // Units whose exposures carry no latency have no value: they are left out of this metric.
        const lat = `arrayFilter(x -> x.1 < E AND x.3 >= 0, xs)`;
        perUnit.push(
          `${lat} AS ${c}_lat`,
          `notEmpty(${c}_lat) AS ${c}_has`,
          `if(${c}_has, arraySum(x -> ${dec('x.3')}, ${c}_lat) / length(${c}_lat), ${ZERO}) AS ${c}_x`,
        );
        aggregates.push(`countIf(${c}_has) AS ${c}_units`, `countIf(${c}_has) AS ${c}_count`, ...moments(c, 'x', `${c}_has`));
        break;
      }
      case 'ratio': {
        const hasNum = `${n(typeIndex(m.numerator.event))} > 0`;
        perUnit.push(`${ref(m.numerator)} AS ${c}_x`, `${ref(m.denominator)} AS ${c}_d`, `${hasNum} AS ${c}_has`);
        aggregates.push(
          `count() AS ${c}_units`,
          `countIf(${c}_has) AS ${c}_count`,
          ...moments(c, 'x'),
          ...moments(c, 'd'),
          `sum(toDecimal256(${c}_x, 12) * toDecimal256(${c}_d, 12)) AS ${c}_xd`,
        );
        break;
      }
    }
  });

  const params: Record<string, unknown> = { experiment: q.experiment, ends: [...q.ends], types };
  types.forEach((t, i) => (params[`type${i}`] = t));

  const withEvents = types.length > 0;
  const eventArrays = types.map(
    (_t, i) => `arrayFlatten(arrayMap(p -> p.2, arrayFilter(p -> p.1 = {type${i}:String}, kept.byType))) AS e${i}`,
  );
  const sql = `
WITH
  units AS (
    SELECT unitId, min(firstTs) AS t0, max(lastTs) AS tLast, argMinMerge(variantState) AS variant,
      groupUniqArrayArray(variantsSeen) AS seen, groupUniqArrayMerge(exposureSet) AS xs
    FROM unit_exposures
    WHERE experiment = {experiment:String}
    GROUP BY unitId
    HAVING length(seen) = 1
  )${
    withEvents
      ? `,
  ev AS (
    SELECT unitId, type, groupUniqArrayMerge(eventSet) AS es
    FROM unit_events
    WHERE type IN {types:Array(String)}
    GROUP BY unitId, type
  ),
  kept AS (
    SELECT ev.unitId AS unitId,
      groupArray((ev.type, arrayMap(x -> (x.1, x.3), arrayFilter(x -> x.1 >= units.t0, ev.es)))) AS byType,
      max(arrayReduce('max', arrayMap(x -> x.1, arrayFilter(x -> x.1 >= units.t0, ev.es)))) AS keptLast
    FROM ev INNER JOIN units ON ev.unitId = units.unitId
    GROUP BY ev.unitId
  )`
      : ''
  },
  per_unit AS (
    SELECT units.variant AS variant, units.xs AS xs,
      ${withEvents ? 'greatest(units.tLast, kept.keptLast)' : 'units.tLast'} AS last,
      ${eventArrays.map((e) => e + ',\n      ').join('')}arrayFilter(i -> {ends:Array(Int64)}[i] > units.t0, range(1, length({ends:Array(Int64)}) + 1)) AS ks,
      arrayFilter(e -> e > units.t0, {ends:Array(Int64)}) AS Es
    FROM units${withEvents ? ' LEFT JOIN kept ON units.unitId = kept.unitId' : ''}
  ),
  per_bucket AS (
    SELECT variant, k, last,
      arrayCount(x -> x.1 < E, xs) AS nx${perUnit.map((p) => ',\n      ' + p).join('')}
    FROM per_unit
    ARRAY JOIN ks AS k, Es AS E
  )
SELECT k - 1 AS bucket, variant, count() AS units, sum(nx) AS exposures, max(last) AS lastTs${aggregates.map((a) => ',\n  ' + a).join('')}
FROM per_bucket
GROUP BY variant, k
ORDER BY k, variant`;
  return { sql, params, columns };
}
