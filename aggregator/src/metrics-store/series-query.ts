import type { EventRef, MetricSpec, SeriesQuery } from './metrics-store.ts';

/**
 * The one analysis query (SPEC §4–§5), built from the metric kinds only: every value that comes
 * from outside (experiment key, event types, bucket ends) is a query parameter.
 *
 * 1. `units`: the experiment's units with their first exposure time `t0`, the variant of that
 *    exposure and their exposures. A unit seen in two variants is left out (it cannot be
 *    attributed; forced and holdout units never have exposures in the first place).
 * 2. `ev`: every unit's events of the metrics' types; joined to `units`, a unit keeps those at or
 *    after its `t0`.
 * 3. `per_unit`: each of a unit's series (its exposures, errored exposures, exposures with a
 *    latency, its kept events of each type) sorted by time, each element tagged with the bucket it
 *    falls in, and running sums along it. A unit's figures only change in its *active* buckets
 *    (where it is first exposed or has data); its value at an active bucket's end is read off the
 *    running sums at the count of elements in that bucket or earlier. One pass per series plus
 *    one count per active bucket: no value is recomputed from the whole series per bucket.
 * 4. For each active bucket the unit yields the change of its values since its previous active
 *    bucket (it appears, x − x', x² − x'², …; before `t0` every value is 0), and those changes are
 *    summed exactly per (variant, bucket); the adapter accumulates them over the buckets into
 *    counts and Σx, Σx², Σxy, then means, variances and covariances.
 */
export interface BuiltSeriesQuery {
  sql: string;
  params: Record<string, unknown>;
  /** Result column prefix of each metric, in order. */
  columns: string[];
}

/** Event values are clamped to ±1e15 (no metric is that large) so exact decimal sums cannot overflow. */
const dec = (x: string) => `toDecimal128(least(greatest(${x}, -1e15), 1e15), 12)`;
const wide = (x: string) => `toDecimal256(${x}, 12)`;
/** Bucket (0-based) of a time: the first end after it; past every end, 65535, which no active list reaches. */
const bucketOf = (t: string) => `(arrayFirstIndex(e -> e > ${t}, {ends:Array(Int64)}) + 65535) % 65536`;

export function buildSeriesQuery(q: SeriesQuery): BuiltSeriesQuery {
  const types: string[] = [];
  const typeIndex = (event: string): number => {
    let i = types.indexOf(event);
    if (i < 0) i = types.push(event) - 1;
    return i;
  };
  // Per-unit arrays over the active buckets, each holding a value at that bucket's end.
  const series = new Set<string>();
  /** Elements of a series in the bucket at `k` or earlier (as an array over the active buckets). */
  const counted = (name: string) => {
    series.add(name);
    return `arrayMap(k -> arrayCount(b -> b <= k, ${name}_b), active)`;
  };
  /** The running sum of a series' values at each active bucket's end (Decimal128(12): exact). */
  const summed = (name: string) => {
    series.add(name);
    return `arrayMap(c -> if(c = 0, toDecimal128(0, 12), ${name}_cum[c]), ${counted(name)})`;
  };
  const asDec = (arr: string) => `arrayMap(c -> toDecimal128(c, 12), ${arr})`;
  const ref = (r: EventRef) => (r.field === 'value' ? summed(`e${typeIndex(r.event)}`) : asDec(counted(`e${typeIndex(r.event)}`)));

  const perUnit: string[] = [];
  const joined: string[] = [];
  const aggregates: string[] = [];
  const columns: string[] = [];
  /** A per-unit array over the active buckets, named `${c}_${name}`, array-joined as `${c}_${name}E`. */
  const value = (c: string, name: string, expr: string) => {
    perUnit.push(`${expr} AS ${c}_${name}`);
    joined.push(`${c}_${name} AS ${c}_${name}E`, `arrayPushFront(arrayPopBack(${c}_${name}), ${name === 'has' ? '0' : 'toDecimal128(0, 12)'}) AS ${c}_${name}P`);
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
    const basic = (x: string, has: string, unitsFollowHas = false) => {
      value(c, 'x', x);
      value(c, 'has', has);
      aggregates.push(
        unitsFollowHas ? `sum(toInt64(${c}_hasE) - toInt64(${c}_hasP)) AS ${c}_units` : `sum(pos = 1) AS ${c}_units`,
        `sum(toInt64(${c}_hasE) - toInt64(${c}_hasP)) AS ${c}_count`,
        ...changes(c, 'x'),
      );
    };
    const positive = (arr: string) => `arrayMap(n -> n > 0, ${arr})`;
    switch (m.kind) {
      case 'proportion': {
        const n = counted(`e${typeIndex(m.event)}`);
        basic(asDec(positive(n)), positive(n));
        break;
      }
      case 'mean': {
        const i = typeIndex(m.event);
        basic(summed(`e${i}`), positive(counted(`e${i}`)));
        break;
      }
      case 'error_rate': {
        const n = counted('err');
        basic(asDec(positive(n)), positive(n));
        break;
      }
      case 'latency_ms': {
        // Units whose exposures carry no latency have no value: they are left out of this metric.
        const n = counted('lat');
        basic(`arrayMap((s, n) -> if(n = 0, toDecimal128(0, 12), s / n), ${summed('lat')}, ${n})`, positive(n), true);
        break;
      }
      case 'ratio': {
        value(c, 'x', ref(m.numerator));
        value(c, 'd', ref(m.denominator));
        value(c, 'has', positive(counted(`e${typeIndex(m.numerator.event)}`)));
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
  // Each series sorted by time: (time, value) pairs, from which bucket tags and running sums come.
  const sources: Record<string, string> = {
    xs: 'arrayMap(x -> (x.1, 0.), units.xs)',
    err: 'arrayMap(x -> (x.1, 0.), arrayFilter(x -> x.4 >= 500, units.xs))',
    lat: 'arrayMap(x -> (x.1, x.3), arrayFilter(x -> x.3 >= 0, units.xs))',
  };
  types.forEach(
    (_t, i) => (sources[`e${i}`] = `arrayFilter(x -> x.1 >= units.t0, arrayFlatten(arrayMap(p -> arrayMap(x -> (x.1, x.3), p.2), arrayFilter(p -> p.1 = {type${i}:String}, ev.byType))))`),
  );
  series.add('xs');
  const sorted = [...series].map((s) => `arraySort(x -> x.1, ${sources[s]}) AS ${s}_s`);
  const tagged = [...series].flatMap((s) => [`arrayMap(x -> ${bucketOf('x.1')}, ${s}_s) AS ${s}_b`, `arrayCumSum(arrayMap(x -> ${dec('x.2')}, ${s}_s)) AS ${s}_cum`]);
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
    SELECT unitId, groupArray((type, es)) AS byType
    FROM (
      SELECT unitId, type, groupUniqArrayMerge(eventSet) AS es
      FROM unit_events
      WHERE type IN {types:Array(String)}
      GROUP BY unitId, type
    )
    GROUP BY unitId
  )`
      : ''
  },
  series AS (
    SELECT units.variant AS variant, ${bucketOf('units.t0')} AS k0,
      ${sorted.join(',\n      ')},
      greatest(units.tLast${types.map((_t, i) => `, e${i}_s[-1].1`).join('')}) AS last
    FROM units${withEvents ? ' LEFT JOIN ev ON units.unitId = ev.unitId' : ''}
  ),
  per_unit AS (
    SELECT variant, last, ${tagged.join(',\n      ')},
      arrayFilter(k -> k < length({ends:Array(Int64)}), arraySort(arrayDistinct(arrayConcat([k0], ${[...series].map((s) => `${s}_b`).join(', ')})))) AS active,
      ${counted('xs')} AS nx${perUnit.map((p) => ',\n      ' + p).join('')}
    FROM series
  ),
  per_change AS (
    SELECT variant, last, k, pos, nxE, nxP${joined.map((x) => ', ' + x.slice(x.lastIndexOf(' ') + 1)).join('')}
    FROM per_unit
    ARRAY JOIN active AS k, arrayEnumerate(active) AS pos, nx AS nxE, arrayPushFront(arrayPopBack(nx), 0) AS nxP${joined.map((x) => ', ' + x).join('')}
  )
SELECT k AS bucket, variant, sum(pos = 1) AS units, sum(nxE - nxP) AS exposures, max(last) AS lastTs${aggregates.map((a) => ',\n  ' + a).join('')}
FROM per_change
GROUP BY variant, k
ORDER BY k, variant`;
  return { sql, params, columns };
}
