import {
  adjustPValues,
  cupedArms,
  mixingVariance,
  normalQuantile,
  widenedInterval,
  normalComparison,
  poststratify,
  proportionTest,
  ratioEstimate,
  ratioTest,
  sequentialPValue,
  srm,
  srmAcrossGroups,
  welchTest,
  type ArmEstimate,
  type Comparison,
  type Correction,
  type Experiment,
  type Phase,
} from '@bunryu/core';
import type { MetricAggregate, SeriesRow } from '../metrics-store/metrics-store.ts';
import { correctedMetrics, type MetricType, type ResolvedMetric } from './experiment-metrics.ts';

/** The JSON of SPEC §4. Numbers that cannot be computed (no units, zero baseline) are null. */
export interface VariantCounts {
  key: string;
  units: number;
  exposures: number;
}

export interface MetricVariant {
  key: string;
  units: number;
  count: number;
  sum: number;
  mean: number | null;
  variance: number | null;
  /** With CUPED (SPEC §11) `mean` and `variance` are adjusted; these are the unadjusted ones. */
  raw?: { mean: number | null; variance: number | null };
}

export interface MetricComparison {
  variant: string;
  baseline: string;
  diff: number | null;
  ci95: [number | null, number | null];
  relLift: number | null;
  relCi95: [number | null, number | null];
  pValue: number | null;
  sequentialPValue: number | null;
  probabilityToBeat: number | null;
  /**
   * With `analysis.correction`, on the primary and secondary metrics: p-values corrected over
   * those metrics × treatments, and the intervals widened to match (SPEC §11).
   */
  /**
   * With CUPED (SPEC §11): the figures above are adjusted by the pre-exposure covariate; these
   * are the unadjusted ones, and how much variance the adjustment removed.
   */
  raw?: Pick<MetricComparison, 'diff' | 'ci95' | 'relLift' | 'relCi95' | 'pValue' | 'sequentialPValue' | 'probabilityToBeat'>;
  cuped?: { theta: number | null; varianceReduction: number | null };
  adjusted?: {
    method: Correction;
    pValue: number | null;
    sequentialPValue: number | null;
    ci95: [number | null, number | null];
    relCi95: [number | null, number | null];
  };
}

export interface MetricResult {
  metric: string;
  type: MetricType;
  variants: MetricVariant[];
  comparisons: MetricComparison[];
}

/** A phase of a ramped experiment as the results show it (ADR 0009). */
export interface PhaseCounts {
  startedAt: string;
  weights: Readonly<Record<string, number>> | null;
  /** Units first exposed in this phase, per variant. */
  units: Record<string, number>;
  /** Of those, units a later ramp moved to another variant: analysed here with their data before it. */
  moved: number;
}

export interface ExperimentResults {
  experiment: string;
  updatedAt: string | null;
  srm: { pValue: number | null; mismatch: boolean };
  variants: VariantCounts[];
  metrics: MetricResult[];
  /** Present once the weights have changed: each phase's units, the basis of the analysis. */
  phases?: PhaseCounts[];
  /**
   * Assigned vs served (SPEC §11), per variant: the shares of its exposures answered by the
   * assigned variant, by the route's fallback and by the model-server's fallback version. The
   * figures above stay intention-to-treat: every unit in the variant it was assigned.
   */
  served?: { key: string; exposures: number; asAssigned: number | null; routeFallback: number | null; modelFallback: number | null }[];
  /**
   * An interleaving experiment's verdict (SPEC §13): per variant the units that preferred its
   * ranking (more credited clicks), the ties among units that clicked, the share of decided units
   * preferring the second variant, and the sign test of those preferences with its always-valid
   * version (the mixture SPRT's p at this look).
   */
  interleaving?: {
    click: string;
    requests: number;
    units: number;
    clickedUnits: number;
    variants: { key: string; preferred: number }[];
    ties: number;
    preference: number | null;
    pValue: number;
    sequentialPValue: number;
  };
  /** p50, p95 and p99 of the gateway's latency per variant, over exposures, with 95% intervals. */
  latencyPercentiles?: { key: string; n: number; percentiles: { p: number; value: number; ci95: [number, number] }[] }[];
}

export interface AnalysisOptions {
  /**
   * Units each arm needs before a look counts for the always-valid p-value: its normal
   * approximation (and a variance estimated from a handful of units) would otherwise let one
   * early, noisy look fix a small p-value for good.
   */
  sequentialMinUnits: number;
}

/** One point of the analysis: the state at the end of a bucket. */
export interface AnalysisPoint {
  srm: ExperimentResults['srm'];
  variants: VariantCounts[];
  metrics: MetricResult[];
  /** Per phase (index into the phases), units per variant and units moved. */
  phases: { units: Record<string, number>; moved: number }[];
  lastTs: number;
}

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** Variant order: the definition's (the first is the control), then any variant only the data knows. */
export function variantOrder(experiment: Pick<Experiment, 'variants'>, rows: readonly SeriesRow[]): string[] {
  const keys = experiment.variants.map((v) => v.key);
  const extra = [...new Set(rows.map((r) => r.variant))].filter((v) => !keys.includes(v)).sort();
  return [...keys, ...extra];
}

interface ArmStats {
  /** What SPEC §4 shows for the variant. */
  shown: MetricVariant;
  /** Per-unit variance, for the mixing variance of the sequential test. */
  unitVariance: number;
}

const EMPTY: MetricAggregate = { units: 0, count: 0, sum: 0, mean: NaN, variance: NaN };

function armStats(type: MetricType, key: string, a: MetricAggregate): ArmStats {
  switch (type) {
    case 'proportion': {
      const p = a.units > 0 ? a.sum / a.units : NaN;
      const v = p * (1 - p);
      return { shown: { key, units: a.units, count: a.count, sum: a.sum, mean: finite(p), variance: finite(v) }, unitVariance: v };
    }
    case 'mean':
      return { shown: { key, units: a.units, count: a.count, sum: a.sum, mean: finite(a.mean), variance: finite(a.variance) }, unitVariance: a.variance };
    case 'ratio': {
      const r = ratioEstimate(ratioSummary(a));
      return { shown: { key, units: a.units, count: a.count, sum: a.sum, mean: finite(a.sum / (a.denSum ?? NaN)), variance: finite(r.unitVariance) }, unitVariance: r.unitVariance };
    }
  }
}

function ratioSummary(a: MetricAggregate) {
  return {
    n: a.units,
    meanNumerator: a.mean,
    meanDenominator: a.denMean ?? NaN,
    varianceNumerator: a.variance,
    varianceDenominator: a.denVariance ?? NaN,
    covariance: a.covariance ?? NaN,
  };
}

function compare(type: MetricType, control: MetricAggregate, treatment: MetricAggregate): Comparison {
  switch (type) {
    case 'proportion':
      return proportionTest({ n: control.units, conversions: control.sum }, { n: treatment.units, conversions: treatment.sum });
    case 'mean':
      return welchTest({ n: control.units, mean: control.mean, variance: control.variance }, { n: treatment.units, mean: treatment.mean, variance: treatment.variance });
    case 'ratio':
      return ratioTest(ratioSummary(control), ratioSummary(treatment));
  }
}

/** What the analysis carries from look to look (bucket to bucket). */
interface Looks {
  /** `${metric}/${variant}` → the smallest sequential p-value so far. */
  running: Map<string, number>;
  /** The standard error behind each shown comparison, for the correction's widened intervals. */
  standardErrors: Map<MetricComparison, number>;
}

/** One arm's estimate and the variance of that estimate, within one phase. */
function armEstimate(type: MetricType, a: MetricAggregate): ArmEstimate {
  switch (type) {
    case 'proportion': {
      const p = a.sum / a.units;
      return { n: a.units, estimate: p, varianceOfEstimate: (p * (1 - p)) / a.units };
    }
    case 'mean':
      return { n: a.units, estimate: a.mean, varianceOfEstimate: a.variance / a.units };
    case 'ratio': {
      const r = ratioEstimate(ratioSummary(a));
      return { n: a.units, estimate: r.ratio, varianceOfEstimate: r.varianceOfRatio };
    }
  }
}

/** The phase's arms as estimates: CUPED-adjusted where every arm has a covariate, and unadjusted. */
function phaseEstimates(type: MetricType, arms: readonly MetricAggregate[]): { raw: ArmEstimate[]; adjusted?: ArmEstimate[]; unadjusted?: ArmEstimate[]; theta?: number } {
  const raw = arms.map((a) => armEstimate(type, a));
  // Without pre-exposure data (every covariate 0) there is nothing to adjust by.
  if (type === 'ratio' || !arms.every((a) => a.covariate) || !arms.some((a) => a.covariate!.sumX2 > 0)) return { raw };
  const cuped = cupedArms(
    arms.map((a) => {
      // Σy² from the mean and the sample variance; a proportion's y is 0 or 1, so Σy² = Σy.
      const sumY2 = type === 'proportion' ? a.sum : (a.units - 1) * a.variance + (a.sum * a.sum) / a.units;
      return { n: a.units, sumY: a.sum, sumY2, sumX: a.covariate!.sumX, sumX2: a.covariate!.sumX2, sumXY: a.covariate!.sumXY };
    }),
  );
  return {
    raw,
    adjusted: cuped.arms.map((a) => ({ n: a.n, estimate: a.mean, varianceOfEstimate: a.varianceOfMean })),
    // SPEC §11's variance reduction compares with the same sample variances, not the z-test's p(1 − p).
    unadjusted: cuped.arms.map((a) => ({ n: a.n, estimate: a.rawMean, varianceOfEstimate: a.rawVarianceOfMean })),
    theta: cuped.theta,
  };
}

const NO_ESTIMATE: ArmEstimate = { n: 0, estimate: NaN, varianceOfEstimate: NaN };

/**
 * A metric as estimates rather than plain per-unit means: over several phases (ADR 0009) and
 * whenever CUPED applies (SPEC §11). Each phase's arms are compared within it (CUPED's θ per
 * phase) and the phases weighted by their share of units; phases where an arm has fewer than 2
 * units are left out of the estimates (their units still count). A variant's `mean` is its
 * estimate and its `variance` the per-unit variance that gives the estimate's variance over the
 * variant's `units` (variance / units), so every reader of SPEC §4's shape — the comparisons,
 * the sequential p-value, the autopilot — gets the right standard errors. Comparisons use the
 * normal quantile.
 */
function estimatedResult(m: ResolvedMetric, j: number, order: readonly string[], phases: readonly Map<string, SeriesRow>[], options: AnalysisOptions, looks: Looks): MetricResult {
  const perPhase = phases.map((at) => new Map([...at].map(([key, r]) => [key, r.metrics[j]!])));
  const strata = perPhase.filter((at) => order.every((key) => (at.get(key)?.units ?? 0) >= 2)).map((at) => phaseEstimates(m.type, order.map((key) => at.get(key)!)));
  const cuped = strata.length > 0 && strata.every((s) => s.adjusted);
  const combine = (pick: (s: (typeof strata)[number]) => ArmEstimate[]) => (strata.length > 0 ? poststratify(strata.map(pick)) : order.map(() => NO_ESTIMATE));
  const raw = combine((s) => s.raw);
  const arms = cuped ? combine((s) => s.adjusted!) : raw;
  const total = (key: string, field: 'units' | 'count' | 'sum') => perPhase.reduce((a, at) => a + (at.get(key)?.[field] ?? 0), 0);
  const perUnit = (a: ArmEstimate[], i: number) => total(order[i]!, 'units') * a[i]!.varianceOfEstimate;
  const shown: MetricVariant[] = order.map((key, i) => ({
    key,
    units: total(key, 'units'),
    count: total(key, 'count'),
    sum: total(key, 'sum'),
    mean: finite(arms[i]!.estimate),
    variance: finite(perUnit(arms, i)),
    ...(cuped ? { raw: { mean: finite(raw[i]!.estimate), variance: finite(perUnit(raw, i)) } } : {}),
  }));
  const [baseline, ...others] = order;
  const comparisons = others.map((variant): MetricComparison => {
    const v = order.indexOf(variant);
    const compareArms = (a: ArmEstimate[], id: string) => {
      const cmp = normalComparison(a[0]!.estimate, a[0]!.varianceOfEstimate, a[v]!.estimate, a[v]!.varianceOfEstimate, 0.95);
      const enough = a[0]!.n >= options.sequentialMinUnits && a[v]!.n >= options.sequentialMinUnits;
      const seq = enough ? sequentialPValue(cmp.diff, cmp.se * cmp.se, mixingVariance(perUnit(a, 0), perUnit(a, v))) : 1;
      return shownComparison(id, variant, baseline!, cmp, seq, looks);
    };
    const shownCmp = compareArms(arms, `${m.key}/${variant}`);
    if (!cuped) return shownCmp;
    const { variant: _v, baseline: _b, ...unadjusted } = compareArms(raw, `${m.key}/${variant}/raw`);
    const before = combine((s) => s.unadjusted!);
    const reduction = 1 - (arms[0]!.varianceOfEstimate + arms[v]!.varianceOfEstimate) / (before[0]!.varianceOfEstimate + before[v]!.varianceOfEstimate);
    return { ...shownCmp, raw: unadjusted, cuped: { theta: strata.length === 1 ? finite(strata[0]!.theta!) : null, varianceReduction: finite(reduction) } };
  });
  return { metric: m.key, type: m.type, variants: shown, comparisons };
}

/**
 * Turns the store's cumulative rows into one analysis point per bucket (SPEC §4, §6): counts and
 * SRM per variant, and for each metric the per-variant figures and each variant against the
 * control. The sequential p-value of a point is the running minimum of the mSPRT p-values at this
 * and every earlier bucket end (each bucket end is a look), so it never rises as data accrues.
 */
export function analyse(
  experiment: Pick<Experiment, 'variants' | 'metrics' | 'analysis'>,
  metrics: readonly ResolvedMetric[],
  rows: readonly SeriesRow[],
  buckets: number,
  options: AnalysisOptions,
  phases: readonly Phase[] = [],
): AnalysisPoint[] {
  const order = variantOrder(experiment, rows);
  const weights = order.map((key) => experiment.variants.find((v) => v.key === key)?.weight ?? 0);
  const phaseCount = Math.max(1, phases.length, ...rows.map((r) => r.phase + 1));
  // byBucket[k][phase]: the phase's rows at bucket k by variant.
  const byBucket: Map<string, SeriesRow>[][] = Array.from({ length: buckets }, () => Array.from({ length: phaseCount }, () => new Map()));
  for (const r of rows) byBucket[r.bucket]?.[r.phase]?.set(r.variant, r);

  const [baseline, ...others] = order;
  const looks: Looks = { running: new Map(), standardErrors: new Map() };
  const points: AnalysisPoint[] = [];
  for (let k = 0; k < buckets; k++) {
    const byPhase = byBucket[k]!;
    const withData = byPhase.filter((at) => at.size > 0);
    const sum = (key: string, field: 'units' | 'exposures') => byPhase.reduce((a, at) => a + (at.get(key)?.[field] ?? 0), 0);
    const variants = order.map((key) => ({ key, units: sum(key, 'units'), exposures: sum(key, 'exposures') }));
    // Each phase's units against the weights they were assigned under; unrecorded weights are not checked.
    const s =
      phases.length > 1
        ? srmAcrossGroups(
            phases.flatMap((p, i) => (p.weights ? [{ counts: order.map((key) => byPhase[i]?.get(key)?.units ?? 0), weights: order.map((key) => p.weights![key] ?? 0) }] : [])),
          )
        : srm(variants.map((v) => v.units), weights);
    const lastTs = Math.max(0, ...byPhase.flatMap((at) => [...at.values()].map((r) => r.lastTs)));
    const results = metrics.map((m, j): MetricResult => {
      const covariate = withData.some((at) => [...at.values()].some((r) => (r.metrics[j]?.covariate?.sumX2 ?? 0) > 0));
      if (withData.length > 1 || covariate) return estimatedResult(m, j, order, withData, options, looks);
      const at = withData[0] ?? new Map<string, SeriesRow>();
      const aggregate = (key: string) => at.get(key)?.metrics[j] ?? EMPTY;
      const arms = new Map(order.map((key) => [key, armStats(m.type, key, aggregate(key))]));
      const comparisons = baseline === undefined ? [] : others.map((variant): MetricComparison => {
        const c = compare(m.type, aggregate(baseline), aggregate(variant));
        const enough = aggregate(baseline).units >= options.sequentialMinUnits && aggregate(variant).units >= options.sequentialMinUnits;
        const seq = enough ? sequentialPValue(c.diff, c.se * c.se, mixingVariance(arms.get(baseline)!.unitVariance, arms.get(variant)!.unitVariance)) : 1;
        return shownComparison(`${m.key}/${variant}`, variant, baseline, c, seq, looks);
      });
      return { metric: m.key, type: m.type, variants: order.map((key) => arms.get(key)!.shown), comparisons };
    });
    correct(experiment, results, looks.standardErrors);
    const phaseCounts = byPhase.map((at) => ({ units: Object.fromEntries(order.map((key) => [key, at.get(key)?.units ?? 0])), moved: [...at.values()].reduce((a, r) => a + r.moved, 0) }));
    points.push({ srm: { pValue: finite(s.pValue), mismatch: s.mismatch }, variants, metrics: results, phases: phaseCounts, lastTs });
  }
  return points;
}

const Z95 = normalQuantile(0.975);

/**
 * SPEC §11: corrects the p-values of the primary and secondary metrics × treatments together,
 * each comparison keeping its raw figures beside the adjusted ones.
 */
function correct(experiment: Pick<Experiment, 'metrics' | 'analysis'>, results: readonly MetricResult[], standardErrors: ReadonlyMap<MetricComparison, number>): void {
  const method = experiment.analysis?.correction ?? 'none';
  if (method === 'none') return;
  const family = correctedMetrics(experiment);
  correctTogether(
    method,
    results.filter((m) => family.has(m.metric)).flatMap((m) => m.comparisons),
    (c) => standardErrors.get(c) ?? NaN,
  );
}

/** The standard error behind a normal 95% interval. */
const intervalSe = ([lo, hi]: readonly [number | null, number | null]): number => (lo === null || hi === null ? NaN : (hi - lo) / (2 * Z95));

/** The standard error behind a shown comparison, read back from its 95% interval. */
export const standardErrorOf = (c: MetricComparison): number => intervalSe(c.ci95);

/** Sets `adjusted` on each of `tests`: their p-values corrected as one family, intervals widened to match. */
export function correctTogether(method: Exclude<Correction, 'none'>, tests: readonly MetricComparison[], standardError: (c: MetricComparison) => number): void {
  const p = adjustPValues(tests.map((c) => c.pValue ?? NaN), method);
  const seq = adjustPValues(tests.map((c) => c.sequentialPValue ?? NaN), method);
  tests.forEach((c, i) => {
    const se = standardError(c);
    const same = p[i] === c.pValue;
    const ci = same ? c.ci95 : widenedInterval(c.diff ?? NaN, se, c.pValue ?? NaN, p[i]!).map(finite);
    const relSe = intervalSe(c.relCi95);
    const relCi = same ? c.relCi95 : widenedInterval(c.relLift ?? NaN, relSe, c.pValue ?? NaN, p[i]!).map(finite);
    c.adjusted = { method, pValue: finite(p[i]!), sequentialPValue: finite(seq[i]!), ci95: [ci[0]!, ci[1]!], relCi95: [relCi[0]!, relCi[1]!] };
  });
}

/** A comparison as SPEC §4 shows it; its sequential p-value (under `id`) is the running minimum over looks. */
function shownComparison(id: string, variant: string, baseline: string, c: Comparison, seq: number, looks: Looks): MetricComparison {
  const min = Math.min(looks.running.get(id) ?? 1, Number.isNaN(seq) ? 1 : seq);
  looks.running.set(id, min);
  const shown: MetricComparison = {
    variant,
    baseline,
    diff: finite(c.diff),
    ci95: [finite(c.ci95[0]), finite(c.ci95[1])],
    relLift: finite(c.relLift),
    relCi95: [finite(c.relCi95[0]), finite(c.relCi95[1])],
    pValue: finite(c.pValue),
    sequentialPValue: min,
    probabilityToBeat: finite(c.probabilityToBeat),
  };
  looks.standardErrors.set(shown, c.se);
  return shown;
}
