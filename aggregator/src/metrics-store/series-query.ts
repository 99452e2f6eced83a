import type { EventRef, MetricSpec, SeriesQuery } from './metrics-store.ts';

/**
 * The one analysis query (SPEC §4–§5), built from the metric kinds only: every value that comes
 * from outside (experiment key, event types, bucket ends, phase starts) is a query parameter.
 * It reads flat rows, not per-unit sets (docs/adr/0010-results-by-row.md):
 *
 * 1. `units`: the experiment's units with their first exposure time `t0` and the variant of that
 *    exposure (forced and holdout units never have exposures). With phases (ADR 0009), a unit
 *    belongs to the phase its `t0` falls in and only its data before that phase ends (`cut`)
 *    counts; a unit seen in a second variant only from `cut` on was moved by a ramp and stays in
 *    its first variant, counted in `moved`. A unit seen in two variants within its own phase
 *    cannot be attributed and is left out.
 * 2. `kept`: `event_rows` read with FINAL (each event once, whatever was redelivered): the unit's
 *    exposures to this experiment and its events of the metrics' types, joined to `units` and kept
 *    at or after `t0` (or in CUPED's window before it) and before `cut`. Each row's bucket comes
 *    from its time by arithmetic when the ends are evenly spaced (as planBuckets makes them).
 * 3. `per_bucket`: per unit and bucket, counts and exact Decimal128 sums of each series (its
 *    exposures, errored exposures, exposures with a latency, its events of each type).
 * 4. `per_unit`: a unit's buckets in order, with running sums over them: its values at the end of
 *    each bucket where it has data (its *active* buckets, at most one per bucket end).
 * 5. For each active bucket the unit yields the change of its values since its previous active
 *    bucket (it appears, x − x', x² − x'², …; before `t0` every value is 0), and those changes are
 *    summed exactly per (phase, variant, bucket); the adapter accumulates them over the buckets
 *    into counts and Σx, Σx², Σxy, then means, variances and covariances.
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
const ZERO = 'toDecimal128(0, 12)';
/** Bucket of rows before `t0` (CUPED's window) and past the last end: never an active bucket. */
const PRE = 65534;
const PAST = 65535;

/**
 * Evenly spaced ends (all but the last, which may be open): `{ b0, step }` with ends[k] = b0 + (k+1)·step.
 * One or two ends always are.
 */
export function evenGrid(ends: readonly number[]): { b0: number; step: number } | undefined {
  const n = ends.length;
  const step = n >= 2 ? ends[1]! - ends[0]! : 1;
  if (!(step > 0)) return undefined;
  for (let k = 2; k < n - 1; k++) if (ends[k]! - ends[k - 1]! !== step) return undefined;
  return { b0: ends[0]! - step, step };
}

/** Bucket (0-based) of a time: the first end after it; past every end, PAST. */
function bucketOf(t: string, even: boolean): string {
  if (!even) return `toUInt16((arrayFirstIndex(e -> e > ${t}, {ends:Array(Int64)}) + 65535) % 65536)`;
  // intDiv truncates towards zero: times before the first bucket's start give 0 or less.
  return `toUInt16(if(${t} >= {lastEnd:Int64}, ${PAST}, least(greatest(intDiv(${t} - {b0:Int64}, {step:Int64}), 0), {lastBucket:Int64})))`;
}

/** Without phases: one phase, and a unit seen in two variants is left out. */
const unphasedUnits = `units AS (
    SELECT unitId, toUInt64(0) AS phase, min(firstTs) AS t0, argMinMerge(variantState) AS variant, false AS moved,
      toInt64(9223372036854775807) AS cut
    FROM unit_exposures
    WHERE experiment = {experiment:String}
    GROUP BY unitId
    HAVING length(groupUniqArrayArray(variantsSeen)) = 1
  )`;

/**
 * With phases: `starts` are the phases' start times after the first. A unit's phase is the
 * number of starts at or before its `t0`; its `cut` is the next start. The first exposure in a
 * second variant (`tMove`) is read from the exposures of the few units that have one.
 */
const phasedUnits = `all_units AS (
    SELECT unitId, min(firstTs) AS t0, argMinMerge(variantState) AS variant,
      groupUniqArrayArray(variantsSeen) AS seen
    FROM unit_exposures
    WHERE experiment = {experiment:String}
    GROUP BY unitId
  ),
  moves AS (
    SELECT r.unitId AS unitId, min(r.ts) AS tMove
    FROM event_rows AS r
    INNER JOIN (SELECT unitId, variant FROM all_units WHERE length(seen) > 1) AS m ON r.unitId = m.unitId
    WHERE r.experiment = {experiment:String} AND r.type = 'exposure' AND r.variant != m.variant
    GROUP BY r.unitId
  ),
  units AS (
    SELECT u.unitId AS unitId, u.t0 AS t0, u.variant AS variant,
      arrayCount(s -> s <= u.t0, {starts:Array(Int64)}) AS phase,
      if(phase < length({starts:Array(Int64)}), {starts:Array(Int64)}[phase + 1], 9223372036854775807) AS cut,
      length(u.seen) > 1 AS moved
    FROM all_units AS u
    LEFT JOIN moves ON u.unitId = moves.unitId
    WHERE length(u.seen) = 1 OR moves.tMove >= cut
  )`;

export function buildSeriesQuery(q: SeriesQuery): BuiltSeriesQuery {
  const types: string[] = [];
  const typeIndex = (event: string): number => {
    let i = types.indexOf(event);
    if (i < 0) i = types.push(event) - 1;
    return i;
  };
  for (const m of q.metrics) {
    if (m.kind === 'proportion' || m.kind === 'mean') typeIndex(m.event);
    if (m.kind === 'ratio') [m.numerator.event, m.denominator.event].forEach(typeIndex);
  }
  const withPre = (q.preWindowMs ?? 0) > 0 && q.metrics.some((m) => m.kind === 'proportion' || m.kind === 'mean');
  const pre = withPre ? q.preWindowMs! : 0;

  // Per (unit, bucket): a count `_n` and an exact sum `_s` of each series. `x`: the unit's
  // exposures; `err`: those answered >= 500; `lat`: those with a latency; `e{i}`: events of type i.
  const isX = `r.experiment != ''`;
  const bucketSeries: string[] = [
    `countIf(${isX}) AS x_n`,
    `countIf(${isX} AND r.status >= 500) AS err_n`,
    `countIf(${isX} AND r.value >= 0) AS lat_n`,
    `sumIf(${dec('r.value')}, ${isX} AND r.value >= 0) AS lat_s`,
  ];
  const names = ['x_n', 'err_n', 'lat_n', 'lat_s'];
  types.forEach((_t, i) => {
    const own = `NOT ${isX} AND r.type = {type${i}:String}`;
    bucketSeries.push(`countIf(${own}) AS e${i}_n`, `sumIf(${dec('r.value')}, ${own}) AS e${i}_s`);
    names.push(`e${i}_n`, `e${i}_s`);
  });
  /** A series' running value at the end of each active bucket. */
  const running = (name: string) => `arrayCumSum(a.${names.indexOf(name) + 2})`;
  const cumulative = names.map((n) => `${running(n)} AS ${n}c`);
  const counted = (name: string) => `${name}_nc`;
  const summed = (name: string) => `${name}_sc`;
  const asDec = (arr: string) => `arrayMap(c -> toDecimal128(c, 12), ${arr})`;
  const ref = (r: EventRef) => (r.field === 'value' ? summed(`e${typeIndex(r.event)}`) : asDec(counted(`e${typeIndex(r.event)}`)));

  const perUnit: string[] = [];
  const covariates: string[] = [];
  const joined: string[] = [];
  const aggregates: string[] = [];
  const columns: string[] = [];
  /** A per-unit array over the active buckets, named `${c}_${name}`, array-joined as `${c}_${name}E`. */
  const value = (c: string, name: string, expr: string) => {
    perUnit.push(`${expr} AS ${c}_${name}`);
    joined.push(`${c}_${name} AS ${c}_${name}E`, `arrayPushFront(arrayPopBack(${c}_${name}), ${name === 'has' ? '0' : ZERO}) AS ${c}_${name}P`);
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
      if (!withPre) return;
      covariates.push(`${expr} AS ${c}_cx`);
      const [x, ye, yp] = [wide(`${c}_cx`), wide(`${c}_xE`), wide(`${c}_xP`)];
      aggregates.push(`sum(if(pos = 1, ${x}, 0)) AS ${c}_cxsum`, `sum(if(pos = 1, ${x} * ${x}, 0)) AS ${c}_cxsq`, `sum(${x} * (${ye} - ${yp})) AS ${c}_cxy`);
    };
    switch (m.kind) {
      case 'proportion': {
        const i = typeIndex(m.event);
        const n = counted(`e${i}`);
        basic(asDec(positive(n)), positive(n));
        covariate(`toDecimal128(pre_e${i}_n > 0, 12)`);
        break;
      }
      case 'mean': {
        const i = typeIndex(m.event);
        basic(summed(`e${i}`), positive(counted(`e${i}`)));
        covariate(`pre_e${i}_s`);
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
        basic(`arrayMap((s, n) -> if(n = 0, ${ZERO}, s / n), ${summed('lat')}, ${n})`, positive(n), true);
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

  const starts = q.phaseStarts ?? [];
  const phased = starts.length > 0;
  const grid = evenGrid(q.ends);
  const params: Record<string, unknown> = { experiment: q.experiment, ends: [...q.ends], types, starts: [...starts], pre };
  if (grid) Object.assign(params, { b0: grid.b0, step: grid.step, lastEnd: q.ends.at(-1)!, lastBucket: q.ends.length - 1 });
  types.forEach((t, i) => (params[`type${i}`] = t));
  const cx = covariates.map((x) => x.slice(x.lastIndexOf(' ') + 1));
  const preSums = withPre ? types.flatMap((_t, i) => [`sumIf(e${i}_n, k = ${PRE}) AS pre_e${i}_n`, `sumIf(e${i}_s, k = ${PRE}) AS pre_e${i}_s`]) : [];

  const rowsWanted = [`(r.experiment = {experiment:String} AND r.type = 'exposure')`];
  if (types.length > 0) rowsWanted.push(`(r.experiment = '' AND r.type IN {types:Array(String)})`);
  const sql = `
WITH
  ${phased ? phasedUnits : unphasedUnits},
  per_bucket AS (
    SELECT r.unitId AS unitId, if(r.ts < units.t0, ${PRE}, ${bucketOf('r.ts', grid !== undefined)}) AS k,
      any(units.phase) AS phase, any(units.variant) AS variant, any(units.moved) AS moved, max(r.ts) AS last,
      ${bucketSeries.join(',\n      ')}
    FROM event_rows AS r FINAL
    INNER JOIN units ON r.unitId = units.unitId
    WHERE (${rowsWanted.join(' OR ')})
      AND r.ts >= units.t0 - {pre:Int64} AND r.ts < units.cut
    GROUP BY unitId, k
  ),
  per_unit AS (
    SELECT any(phase) AS phase, any(variant) AS variant, any(moved) AS moved, maxIf(last, k != ${PRE}) AS last,
      arraySort(x -> x.1, groupArrayIf((k, ${names.join(', ')}), k < ${PRE})) AS a${preSums.map((p) => ',\n      ' + p).join('')}
    FROM per_bucket
    GROUP BY unitId
  ),
  per_active AS (
    SELECT phase, variant, moved, last, a.1 AS active,
      ${[...cumulative, ...covariates].join(',\n      ')}
    FROM per_unit
  ),
  per_values AS (
    SELECT phase, variant, moved, last, active, x_nc AS nx${cx.map((x) => ', ' + x).join('')}${perUnit.map((p) => ',\n      ' + p).join('')}
    FROM per_active
  ),
  per_change AS (
    SELECT phase, variant, moved, last, k, pos, nxE, nxP${cx.map((x) => ', ' + x).join('')}${joined.map((x) => ', ' + x.slice(x.lastIndexOf(' ') + 1)).join('')}
    FROM per_values
    ARRAY JOIN active AS k, arrayEnumerate(active) AS pos, nx AS nxE, arrayPushFront(arrayPopBack(nx), 0) AS nxP${joined.map((x) => ', ' + x).join('')}
  )
SELECT k AS bucket, phase, variant, sum(pos = 1) AS units, sum(pos = 1 AND moved) AS moved, sum(nxE - nxP) AS exposures, max(last) AS lastTs${aggregates.map((a) => ',\n  ' + a).join('')}
FROM per_change
GROUP BY phase, variant, k
ORDER BY k, phase, variant`;
  return { sql, params, columns };
}
