import {
  mixingVariance,
  proportionTest,
  ratioEstimate,
  ratioTest,
  sequentialPValue,
  srm,
  welchTest,
  type Comparison,
  type Experiment,
} from '@bunryu/core';
import type { MetricAggregate, SeriesRow } from '../metrics-store/metrics-store.ts';
import type { MetricType, ResolvedMetric } from './experiment-metrics.ts';

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
}

export interface MetricResult {
  metric: string;
  type: MetricType;
  variants: MetricVariant[];
  comparisons: MetricComparison[];
}

export interface ExperimentResults {
  experiment: string;
  updatedAt: string | null;
  srm: { pValue: number | null; mismatch: boolean };
  variants: VariantCounts[];
  metrics: MetricResult[];
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

/**
 * Turns the store's cumulative rows into one analysis point per bucket (SPEC §4, §6): counts and
 * SRM per variant, and for each metric the per-variant figures and each variant against the
 * control. The sequential p-value of a point is the running minimum of the mSPRT p-values at this
 * and every earlier bucket end (each bucket end is a look), so it never rises as data accrues.
 */
export function analyse(
  experiment: Pick<Experiment, 'variants'>,
  metrics: readonly ResolvedMetric[],
  rows: readonly SeriesRow[],
  buckets: number,
  options: AnalysisOptions,
): AnalysisPoint[] {
  const order = variantOrder(experiment, rows);
  const weights = order.map((key) => experiment.variants.find((v) => v.key === key)?.weight ?? 0);
  const byBucket: Map<string, SeriesRow>[] = Array.from({ length: buckets }, () => new Map());
  for (const r of rows) byBucket[r.bucket]?.set(r.variant, r);

  const [baseline, ...others] = order;
  const running = new Map<string, number>(); // `${metric}/${variant}` → min p so far
  const points: AnalysisPoint[] = [];
  for (let k = 0; k < buckets; k++) {
    const at = byBucket[k]!;
    const variants = order.map((key) => ({ key, units: at.get(key)?.units ?? 0, exposures: at.get(key)?.exposures ?? 0 }));
    const s = srm(variants.map((v) => v.units), weights);
    const lastTs = Math.max(0, ...[...at.values()].map((r) => r.lastTs));
    const results = metrics.map((m, j): MetricResult => {
      const aggregate = (key: string) => at.get(key)?.metrics[j] ?? EMPTY;
      const arms = new Map(order.map((key) => [key, armStats(m.type, key, aggregate(key))]));
      const comparisons = baseline === undefined ? [] : others.map((variant): MetricComparison => {
        const c = compare(m.type, aggregate(baseline), aggregate(variant));
        const id = `${m.key}/${variant}`;
        const enough = aggregate(baseline).units >= options.sequentialMinUnits && aggregate(variant).units >= options.sequentialMinUnits;
        const seq = enough ? sequentialPValue(c.diff, c.se * c.se, mixingVariance(arms.get(baseline)!.unitVariance, arms.get(variant)!.unitVariance)) : 1;
        const min = Math.min(running.get(id) ?? 1, Number.isNaN(seq) ? 1 : seq);
        running.set(id, min);
        return {
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
      });
      return { metric: m.key, type: m.type, variants: order.map((key) => arms.get(key)!.shown), comparisons };
    });
    points.push({ srm: { pValue: finite(s.pValue), mismatch: s.mismatch }, variants, metrics: results, lastTs });
  }
  return points;
}
