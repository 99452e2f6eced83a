import { NO_SLICE, OTHER_SLICE, type EventRef, type MetricSpec, type SeriesQuery } from './metrics-store.ts';

/**
 * The one analysis query (SPEC §4–§5), built from the metric kinds only: every value that comes
 * from outside (experiment key, event types, bucket ends) is a query parameter.
 *
 * 1. `units`: the experiment's units with their first exposure time `t0`, the variant of that
 *    exposure and their exposures (forced and holdout units never have exposures). With phases
 *    (ADR 0009), a unit belongs to the phase its `t0` falls in and only its data before that
 *    phase ends (`cut`) counts; a unit seen in a second variant only from `cut` on was moved by
 *    a ramp and stays in its first variant, counted in `moved`. A unit seen in two variants
 *    within its own phase cannot be attributed and is left out, as is a unit first exposed while
 *    a phase settles (`settle` after its start).
 * 2. `ev`: every unit's events of the metrics' types; joined to `units`, a unit keeps those at or
 *    after its `t0` and before its `cut`.
 * 3. `per_unit`: each of a unit's series (its exposures, errored exposures, exposures with a
 *    latency, its kept events of each type) sorted by time, each element tagged with the bucket it
 *    falls in, and running sums along it. A unit's figures only change in its *active* buckets
 *    (where it is first exposed or has data); its value at an active bucket's end is read off the
 *    running sums at the count of elements in that bucket or earlier. One pass per series plus
 *    one count per active bucket: no value is recomputed from the whole series per bucket.
 * 4. For each active bucket the unit yields the change of its values since its previous active
 *    bucket (it appears, x − x', x² − x'², …; before `t0` every value is 0), and those changes are
 *    summed exactly per (phase, variant, bucket); the adapter accumulates them over the buckets
 *    into counts and Σx, Σx², Σxy, then means, variances and covariances.
 */
export interface BuiltSeriesQuery {
  sql: string;
  params: Record<string, unknown>;
  /** Result column prefix of each metric, in order. */
  columns: string[];
  layout: PerUnitLayout;
}

/** Event values are clamped to ±1e15 (no metric is that large) so exact decimal sums cannot overflow. */
const dec = (x: string) => `toDecimal128(least(greatest(${x}, -1e15), 1e15), 12)`;
const wide = (x: string) => `toDecimal256(${x}, 12)`;
/** Bucket (0-based) of a time: the first end after it; past every end, 65535, which no active list reaches. */
const bucketOfEnds = (t: string) => `(arrayFirstIndex(e -> e > ${t}, {ends:Array(Int64)}) + 65535) % 65536`;
/** The minute a time falls in (minutes since the epoch): the fold's grain (ADR 0013). */
const minuteOf = (t: string) => `intDiv(${t}, 60000)`;

/**
 * The fold's form of the query (ADR 0013): the same per-unit arrays, over the minutes the unit is
 * active in instead of over given bucket ends, for the units `units` (a subquery answering
 * `unitId`) only, one row per unit.
 */
export interface PerUnitForm {
  units: string;
}

/** A per-unit row's integer and decimal series, in the order the fold stores them. */
export interface PerUnitLayout {
  /** `nx` (exposures), then each metric's `has` flag. */
  ints: string[];
  /** Each metric's value `x`, and for ratios its denominator `d` after it. */
  decs: string[];
  /** Each metric's covariate (0 where it has none). */
  covariates: string[];
}

/** Without phases: one phase, and a unit seen in two variants is left out. */
const unphasedUnits = `units AS (
    SELECT unitId, 0 AS phase, min(firstTs) AS t0, argMinMerge(variantState) AS variant, false AS moved,
      groupUniqArrayMerge(exposureSet) AS xs
    FROM unit_exposures
    WHERE experiment = {experiment:String}
    GROUP BY unitId
    HAVING length(groupUniqArrayArray(variantsSeen)) = 1
  )`;

/**
 * With phases: `starts` are the phases' start times after the first. A unit's phase is the
 * number of starts at or before its `t0`; its `cut` is the next start. The first exposure in a
 * second variant (`tMove`) is read from the raw exposures of the few units that have one.
 */
const phasedUnits = `all_units AS (
    SELECT unitId, min(firstTs) AS t0, argMinMerge(variantState) AS variant,
      groupUniqArrayArray(variantsSeen) AS seen, groupUniqArrayMerge(exposureSet) AS xs
    FROM unit_exposures
    WHERE experiment = {experiment:String}
    GROUP BY unitId
  ),
  moves AS (
    SELECT e.unitId AS unitId, min(e.ts) AS tMove
    FROM events AS e
    ARRAY JOIN e.assignments AS a
    INNER JOIN (SELECT unitId, variant FROM all_units WHERE length(seen) > 1) AS m ON e.unitId = m.unitId
    WHERE e.type = 'exposure' AND e.unitId IN (SELECT unitId FROM all_units WHERE length(seen) > 1)
      AND a.experiment = {experiment:String} AND a.variant != m.variant
    GROUP BY e.unitId
  ),
  units AS (
    SELECT u.unitId AS unitId, u.t0 AS t0, u.variant AS variant,
      arrayCount(s -> s <= u.t0, {starts:Array(Int64)}) AS phase,
      if(phase < length({starts:Array(Int64)}), {starts:Array(Int64)}[phase + 1], 9223372036854775807) AS cut,
      length(u.seen) > 1 AS moved,
      arrayFilter(x -> x.1 < cut, u.xs) AS xs
    FROM all_units AS u
    LEFT JOIN moves ON u.unitId = moves.unitId
    WHERE (length(u.seen) = 1 OR moves.tMove >= cut)
      AND NOT arrayExists(s -> u.t0 >= s AND u.t0 < s + {settle:Int64}, {starts:Array(Int64)})
  )`;

export function buildSeriesQuery(q: SeriesQuery, perUnitForm?: PerUnitForm): BuiltSeriesQuery {
  const bucketOf = perUnitForm ? minuteOf : bucketOfEnds;
  /** Past the last end a bucket index reaches none; every minute is kept. */
  const activeOf = (ks: string) => (perUnitForm ? ks : `arrayFilter(k -> k < length({ends:Array(Int64)}), ${ks})`);
  const layout: PerUnitLayout = { ints: ['nx'], decs: [], covariates: [] };
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
  const covariates: string[] = [];
  /** A unit's events of type i in the pre-exposure window, as (time, value). */
  const before = (i: number) =>
    `arrayFilter(x -> x.1 >= units.t0 - {pre:Int64} AND x.1 < units.t0, arrayFlatten(arrayMap(p -> arrayMap(x -> (x.1, x.3), p.2), arrayFilter(p -> p.1 = {type${i}:String}, ev.byType))))`;
  const joined: string[] = [];
  const aggregates: string[] = [];
  const columns: string[] = [];
  /** A per-unit array over the active buckets, named `${c}_${name}`, array-joined as `${c}_${name}E`. */
  const value = (c: string, name: string, expr: string) => {
    perUnit.push(`${expr} AS ${c}_${name}`);
    (name === 'has' ? layout.ints : layout.decs).push(`${c}_${name}`);
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
    /**
     * CUPED's covariate (SPEC §11): the same metric over the unit's events in the window before
     * its first exposure. A unit's covariate never changes, so Σx and Σx² count where the unit
     * appears and Σxy moves with its value: x·(y − y').
     */
    const covariate = (expr: string) => {
      if (!q.preWindowMs) return;
      covariates.push(`${expr} AS ${c}_cx`);
      layout.covariates[j] = `${c}_cx`;
      const [x, ye, yp] = [wide(`${c}_cx`), wide(`${c}_xE`), wide(`${c}_xP`)];
      aggregates.push(`sum(if(pos = 1, ${x}, 0)) AS ${c}_cxsum`, `sum(if(pos = 1, ${x} * ${x}, 0)) AS ${c}_cxsq`, `sum(${x} * (${ye} - ${yp})) AS ${c}_cxy`);
    };
    switch (m.kind) {
      case 'proportion': {
        const i = typeIndex(m.event);
        const n = counted(`e${i}`);
        basic(asDec(positive(n)), positive(n));
        covariate(`toDecimal128(length(${before(i)}) > 0, 12)`);
        break;
      }
      case 'mean': {
        const i = typeIndex(m.event);
        basic(summed(`e${i}`), positive(counted(`e${i}`)));
        covariate(`toDecimal128(arraySum(arrayMap(x -> ${dec('x.2')}, ${before(i)})), 12)`);
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

  q.metrics.forEach((_m, j) => (layout.covariates[j] ??= '0'));
  const starts = q.phaseStarts ?? [];
  const phased = starts.length > 0;
  const params: Record<string, unknown> = { experiment: q.experiment, ends: [...q.ends], types, starts: [...starts], settle: q.phaseSettleMs ?? 0, pre: q.preWindowMs ?? 0 };
  const cx = covariates.map((x) => x.slice(x.lastIndexOf(' ') + 1));
  types.forEach((t, i) => (params[`type${i}`] = t));

  const withEvents = types.length > 0;
  // Each series sorted by time: (time, value) pairs, from which bucket tags and running sums come.
  const sources: Record<string, string> = {
    xs: 'arrayMap(x -> (x.1, 0.), units.xs)',
    err: 'arrayMap(x -> (x.1, 0.), arrayFilter(x -> x.4 >= 500, units.xs))',
    lat: 'arrayMap(x -> (x.1, x.3), arrayFilter(x -> x.3 >= 0, units.xs))',
  };
  const inWindow = phased ? 'x.1 >= units.t0 AND x.1 < units.cut' : 'x.1 >= units.t0';
  types.forEach(
    (_t, i) => (sources[`e${i}`] = `arrayFilter(x -> ${inWindow}, arrayFlatten(arrayMap(p -> arrayMap(x -> (x.1, x.3), p.2), arrayFilter(p -> p.1 = {type${i}:String}, ev.byType))))`),
  );
  series.add('xs');
  const sorted = [...series].map((s) => `arraySort(x -> x.1, ${sources[s]}) AS ${s}_s`);
  const tagged = [...series].flatMap((s) => [`arrayMap(x -> ${bucketOf('x.1')}, ${s}_s) AS ${s}_b`, `arrayCumSum(arrayMap(x -> ${dec('x.2')}, ${s}_s)) AS ${s}_cum`]);
  const restrict = perUnitForm
    ? ` AND unitId IN (${perUnitForm.units})`
    : q.servedAsAssigned
      ? ` AND unitId NOT IN (SELECT unitId FROM events WHERE type = 'exposure' AND fallback != '' AND arrayExists(a -> a.1 = {experiment:String}, assignments))`
      : '';
  // A slice is the attribute on the unit's first exposure, picked as its variant is (by time, then id).
  const slice = !perUnitForm && q.slice;
  if (slice) Object.assign(params, { sliceAttribute: slice.attribute, sliceTop: slice.top });
  const sliced = slice
    ? `,
  unit_slices AS (
    SELECT unitId, argMin((mapContains(attributes, {sliceAttribute:String}), attributes[{sliceAttribute:String}]), (ts, eventId)) AS first
    FROM events
    WHERE type = 'exposure' AND arrayExists(a -> a.1 = {experiment:String}, assignments)
    GROUP BY unitId
  ),
  top_slices AS (
    SELECT first.2 AS value FROM unit_slices WHERE first.1 GROUP BY value ORDER BY count() DESC, value LIMIT {sliceTop:UInt32}
  )`
    : '';
  const sliceOf = `multiIf(NOT unit_slices.first.1, '${NO_SLICE}', unit_slices.first.2 IN (SELECT value FROM top_slices), unit_slices.first.2, '${OTHER_SLICE}')`;
  const by = slice ? 'slice, ' : '';
  const sql = `
WITH
  ${(phased ? phasedUnits : unphasedUnits).replace('WHERE experiment = {experiment:String}', `WHERE experiment = {experiment:String}${restrict}`)}${
    withEvents
      ? `,
  ev AS (
    SELECT unitId, groupArray((type, es)) AS byType
    FROM (
      SELECT unitId, type, groupUniqArrayMerge(eventSet) AS es
      FROM unit_events
      WHERE type IN {types:Array(String)}${restrict}
      GROUP BY unitId, type
    )
    GROUP BY unitId
  )`
      : ''
  }${sliced},
  series AS (
    SELECT units.unitId AS unitId, ${slice ? `${sliceOf} AS slice, ` : ''}units.phase AS phase, units.variant AS variant, units.moved AS moved, ${bucketOf('units.t0')} AS k0,
      ${[...sorted, ...covariates].join(',\n      ')},
      greatest(xs_s[-1].1${types.map((_t, i) => `, e${i}_s[-1].1`).join('')}) AS last
    FROM units${withEvents ? ' LEFT JOIN ev ON units.unitId = ev.unitId' : ''}${slice ? ' LEFT JOIN unit_slices ON units.unitId = unit_slices.unitId' : ''}
  ),
  per_unit AS (
    SELECT unitId, ${by}phase, variant, moved, last, ${[...tagged, ...cx].join(',\n      ')},
      ${activeOf(`arraySort(arrayDistinct(arrayConcat([k0], ${[...series].map((s) => `${s}_b`).join(', ')})))`)} AS active,
      ${counted('xs')} AS nx${perUnit.map((p) => ',\n      ' + p).join('')}
    FROM series
  )${
    perUnitForm
      ? `
SELECT unitId, phase, variant, moved, last, active AS minutes,
  CAST([${layout.ints.map((n) => `arrayMap(v -> toInt64(v), ${n})`).join(', ')}], 'Array(Array(Int64))') AS ints,
  CAST([${layout.decs.join(', ')}], 'Array(Array(Decimal128(12)))') AS decs,
  CAST([${layout.covariates.map((n) => (n === '0' ? 'toDecimal128(0, 12)' : n)).join(', ')}], 'Array(Decimal128(12))') AS cx
FROM per_unit`
      : `,
  per_change AS (
    SELECT ${by}phase, variant, moved, last, k, pos, nxE, nxP${cx.map((x) => ', ' + x).join('')}${joined.map((x) => ', ' + x.slice(x.lastIndexOf(' ') + 1)).join('')}
    FROM per_unit
    ARRAY JOIN active AS k, arrayEnumerate(active) AS pos, nx AS nxE, arrayPushFront(arrayPopBack(nx), 0) AS nxP${joined.map((x) => ', ' + x).join('')}
  )
SELECT ${by}k AS bucket, phase, variant, sum(pos = 1) AS units, sum(pos = 1 AND moved) AS moved, sum(nxE - nxP) AS exposures, max(last) AS lastTs${aggregates.map((a) => ',\n  ' + a).join('')}
FROM per_change
GROUP BY ${by}phase, variant, k
ORDER BY ${by}k, phase, variant`
  }`;
  return { sql, params, columns, layout };
}
