import type { EventRef, MetricSpec, SeriesQuery } from './metrics-store.ts';

/**
 * The one analysis query (SPEC §4–§5), built from the metric kinds only: every value that comes
 * from outside (experiment key, event types, bucket ends) is a query parameter.
 *
 * 1. `units`: the experiment's units with their first exposure time `t0`, the variant of that
 *    exposure and their exposures. A unit seen in two variants is left out (it cannot be
 *    attributed; forced and holdout units never have exposures in the first place).
 * 2. `kept`: for each unit, the events of the metrics' types at or after `t0`.
 * 3. A unit's figures only change in the buckets where it is first exposed or has data: for each
 *    such bucket it yields the change of its values since its previous one (the unit itself
 *    appears, x − x', x² − x'², …). Summing changes keeps the cost at units × active buckets
 *    instead of units × buckets.
 * 4. Aggregated per (variant, bucket): exact sums of those changes; the adapter accumulates them
 *    over the buckets into counts and Σx, Σx², Σxy, then means, variances and covariances.
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
const wide = (x: string) => `toDecimal256(${x}, 12)`;

export function buildSeriesQuery(q: SeriesQuery): BuiltSeriesQuery {
  const types: string[] = [];
  const typeIndex = (event: string): number => {
    let i = types.indexOf(event);
    if (i < 0) i = types.push(event) - 1;
    return i;
  };
  // Per-unit values as of the time bound `at` (E: this bucket's end, P: the previous active
  // bucket's end, or t0 for the first, where every value is 0), as Decimal128(12): exact, so a
  // unit's value does not depend on the order its events are stored in.
  const n = (i: number, at: string) => `arrayCount(x -> x.1 < ${at}, e${i})`;
  const s = (i: number, at: string) => `arraySum(x -> if(x.1 < ${at}, ${dec('x.2')}, ${ZERO}), e${i})`;
  const count = (c: string) => `toDecimal128(${c}, 12)`;
  const ref = (r: EventRef, at: string) => (r.field === 'value' ? s(typeIndex(r.event), at) : count(n(typeIndex(r.event), at)));

  const perUnit: string[] = [];
  const aggregates: string[] = [];
  const columns: string[] = [];
  /** Per-unit value `x` and flag `has` of a metric at both bounds. */
  const values = (c: string, name: string, expr: (at: string) => string) => {
    perUnit.push(`${expr('E')} AS ${c}_${name}E`, `${expr('P')} AS ${c}_${name}P`);
  };
  const changes = (c: string, v: 'x' | 'd') => {
    const [e, p] = [wide(`${c}_${v}E`), wide(`${c}_${v}P`)];
    const name = v === 'x' ? '' : 'd';
    return [`sum(${e} - ${p}) AS ${c}_${name}sum`, `sum(${e} * ${e} - ${p} * ${p}) AS ${c}_${name}sq`];
  };
  q.metrics.forEach((m: MetricSpec, j) => {
    const c = `m${j}`;
    columns.push(c);
    // `units` changes by one where the unit appears, except for latency_ms: by `has`.
    const basic = (x: (at: string) => string, has: (at: string) => string, unitsFollowHas = false) => {
      values(c, 'x', x);
      values(c, 'has', has);
      aggregates.push(
        unitsFollowHas ? `sum(toInt64(${c}_hasE) - toInt64(${c}_hasP)) AS ${c}_units` : `sum(pos = 1) AS ${c}_units`,
        `sum(toInt64(${c}_hasE) - toInt64(${c}_hasP)) AS ${c}_count`,
        ...changes(c, 'x'),
      );
    };
    switch (m.kind) {
      case 'proportion': {
        const i = typeIndex(m.event);
        basic((at) => count(`${n(i, at)} > 0`), (at) => `${n(i, at)} > 0`);
        break;
      }
      case 'mean': {
        const i = typeIndex(m.event);
        basic((at) => s(i, at), (at) => `${n(i, at)} > 0`);
        break;
      }
      case 'error_rate': {
        const errored = (at: string) => `arrayExists(x -> x.1 < ${at} AND x.4 >= 500, xs)`;
        basic((at) => count(errored(at)), errored);
        break;
      }
      case 'latency_ms': {
        // Units whose exposures carry no latency have no value: they are left out of this metric.
        const lat = (at: string) => `arrayFilter(x -> x.1 < ${at} AND x.3 >= 0, xs)`;
        basic(
          (at) => `if(empty(${lat(at)}), ${ZERO}, arraySum(x -> ${dec('x.3')}, ${lat(at)}) / length(${lat(at)}))`,
          (at) => `notEmpty(${lat(at)})`,
          true,
        );
        break;
      }
      case 'ratio': {
        const i = typeIndex(m.numerator.event);
        values(c, 'x', (at) => ref(m.numerator, at));
        values(c, 'd', (at) => ref(m.denominator, at));
        values(c, 'has', (at) => `${n(i, at)} > 0`);
        const [xe, xp, de, dp] = [wide(`${c}_xE`), wide(`${c}_xP`), wide(`${c}_dE`), wide(`${c}_dP`)];
        aggregates.push(
          `sum(pos = 1) AS ${c}_units`,
          `sum(toInt64(${c}_hasE) - toInt64(${c}_hasP)) AS ${c}_count`,
          ...changes(c, 'x'),
          ...changes(c, 'd'),
          `sum(${xe} * ${de} - ${xp} * ${dp}) AS ${c}_xd`,
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
  // The buckets a unit is active in: where it appears, and where its exposures and kept events fall.
  const times = ['arrayMap(x -> x.1, units.xs)', ...types.map((_t, i) => `arrayMap(x -> x.1, e${i})`)];
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
    SELECT units.variant AS variant, units.t0 AS t0, units.xs AS xs,
      ${withEvents ? 'greatest(units.tLast, kept.keptLast)' : 'units.tLast'} AS last,
      ${eventArrays.map((e) => e + ',\n      ').join('')}arraySort(arrayDistinct(arrayMap(t -> arrayFirstIndex(e -> e > t, {ends:Array(Int64)}),
        arrayFilter(t -> t >= units.t0, arrayConcat([units.t0], ${times.join(', ')}))))) AS active
    FROM units${withEvents ? ' LEFT JOIN kept ON units.unitId = kept.unitId' : ''}
  ),
  per_change AS (
    SELECT variant, k, pos, last,
      {ends:Array(Int64)}[k] AS E,
      if(pos = 1, t0, {ends:Array(Int64)}[active[pos - 1]]) AS P,
      arrayCount(x -> x.1 < E, xs) - arrayCount(x -> x.1 < P, xs) AS nx${perUnit.map((p) => ',\n      ' + p).join('')}
    FROM per_unit
    ARRAY JOIN active AS k, arrayEnumerate(active) AS pos
    WHERE k > 0
  )
SELECT k - 1 AS bucket, variant, sum(pos = 1) AS units, sum(nx) AS exposures, max(last) AS lastTs${aggregates.map((a) => ',\n  ' + a).join('')}
FROM per_change
GROUP BY variant, k
ORDER BY k, variant`;
  return { sql, params, columns };
}
