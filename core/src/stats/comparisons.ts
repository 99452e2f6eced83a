import { normalCdf, normalQuantile, studentTQuantile, studentTTwoSided, erfc } from './distributions.ts';

/**
 * Treatment against control (SPEC §6). `diff` is treatment − control; intervals are two-sided at
 * `confidence` (95% unless asked). A value that cannot be computed (no units, a zero control
 * mean for the relative lift) is NaN: callers render it as null.
 */
export interface Comparison {
  diff: number;
  /** Standard error of `diff`. */
  se: number;
  ci95: [number, number];
  /** diff / control mean. */
  relLift: number;
  /** Delta-method interval of the relative lift, with the normal quantile. */
  relCi95: [number, number];
  pValue: number;
  /** Φ(diff / se): the posterior probability that treatment beats control under a flat prior and a normal approximation. */
  probabilityToBeat: number;
  /** Welch–Satterthwaite degrees of freedom (means only). */
  df?: number;
}

/** Sufficient statistics of a per-unit metric: `variance` is the sample variance (n − 1). */
export interface MeanSummary {
  n: number;
  mean: number;
  variance: number;
}

export interface ProportionSummary {
  n: number;
  conversions: number;
}

/**
 * Per-unit numerator and denominator moments of a ratio metric (Σnum / Σden over units):
 * sample variances and the sample covariance of the per-unit sums.
 */
export interface RatioSummary {
  n: number;
  meanNumerator: number;
  meanDenominator: number;
  varianceNumerator: number;
  varianceDenominator: number;
  covariance: number;
}

export interface ComparisonOptions {
  /** Two-sided confidence of the intervals; 0.95 by default. */
  confidence?: number;
}

/** Φ(diff/se), with the degenerate zero-variance cases decided by the sign of diff. */
export function probabilityToBeat(diff: number, se: number): number {
  if (Number.isNaN(diff) || Number.isNaN(se)) return NaN;
  if (se === 0) return diff > 0 ? 1 : diff < 0 ? 0 : 0.5;
  return normalCdf(diff / se);
}

/** Two-sided normal p-value of diff/se: erfc(|z|/√2) keeps its digits far into the tail. */
function normalPValue(diff: number, se: number): number {
  if (Number.isNaN(diff) || Number.isNaN(se)) return NaN;
  if (se === 0) return diff === 0 ? 1 : 0;
  return erfc(Math.abs(diff / se) / Math.SQRT2);
}

/**
 * Relative lift mt/mc − 1 and its delta-method interval:
 * Var(mt/mc) ≈ Var(mt)/mc² + mt²·Var(mc)/mc⁴, where Var(·) are variances of the estimates.
 */
export function relativeLift(
  controlMean: number,
  controlVarOfMean: number,
  treatmentMean: number,
  treatmentVarOfMean: number,
  confidence = 0.95,
): { relLift: number; relCi95: [number, number] } {
  if (controlMean === 0 || !Number.isFinite(controlMean)) return { relLift: NaN, relCi95: [NaN, NaN] };
  const relLift = (treatmentMean - controlMean) / controlMean;
  // The same as √(Var(mt)/mc² + mt²·Var(mc)/mc⁴), without mc⁴, which underflows for small means.
  const ratio = treatmentMean / controlMean;
  const se = Math.sqrt(treatmentVarOfMean + ratio * ratio * controlVarOfMean) / Math.abs(controlMean);
  const z = normalQuantile(1 - (1 - confidence) / 2);
  return { relLift, relCi95: [relLift - z * se, relLift + z * se] };
}

/**
 * Normal-approximation comparison of two estimates given their variances (not per-unit
 * variances): for estimates that are not plain means, such as a phase-weighted one.
 */
export function normalComparison(
  controlMean: number,
  controlVarOfMean: number,
  treatmentMean: number,
  treatmentVarOfMean: number,
  confidence: number,
): Comparison {
  const diff = treatmentMean - controlMean;
  const se = Math.sqrt(controlVarOfMean + treatmentVarOfMean);
  const z = normalQuantile(1 - (1 - confidence) / 2);
  return {
    diff,
    se,
    ci95: [diff - z * se, diff + z * se],
    ...relativeLift(controlMean, controlVarOfMean, treatmentMean, treatmentVarOfMean, confidence),
    pValue: normalPValue(diff, se),
    probabilityToBeat: probabilityToBeat(diff, se),
  };
}

/** Welch's t-test for a difference of means, Welch–Satterthwaite degrees of freedom, t-quantile interval. */
export function welchTest(control: MeanSummary, treatment: MeanSummary, options: ComparisonOptions = {}): Comparison {
  const confidence = options.confidence ?? 0.95;
  const vc = control.variance / control.n;
  const vt = treatment.variance / treatment.n;
  const diff = treatment.mean - control.mean;
  const se = Math.sqrt(vc + vt);
  const base = {
    diff,
    se,
    ...relativeLift(control.mean, vc, treatment.mean, vt, confidence),
    probabilityToBeat: probabilityToBeat(diff, se),
  };
  if (!(control.n >= 2 && treatment.n >= 2)) {
    return { ...base, ci95: [NaN, NaN], relCi95: [NaN, NaN], pValue: NaN, probabilityToBeat: NaN, df: NaN };
  }
  if (se === 0) {
    return { ...base, ci95: [diff, diff], pValue: diff === 0 ? 1 : 0, df: control.n + treatment.n - 2 };
  }
  const df = ((vc + vt) * (vc + vt)) / ((vc * vc) / (control.n - 1) + (vt * vt) / (treatment.n - 1));
  const q = studentTQuantile(1 - (1 - confidence) / 2, df);
  return { ...base, ci95: [diff - q * se, diff + q * se], pValue: studentTTwoSided(diff / se, df), df };
}

/** Two-proportion z-test with the unpooled standard error, normal-quantile interval. */
export function proportionTest(control: ProportionSummary, treatment: ProportionSummary, options: ComparisonOptions = {}): Comparison {
  const pc = control.conversions / control.n;
  const pt = treatment.conversions / treatment.n;
  return normalComparison(pc, (pc * (1 - pc)) / control.n, pt, (pt * (1 - pt)) / treatment.n, options.confidence ?? 0.95);
}

/** The ratio Σnum/Σden of one arm and the delta-method variance of that estimate. */
export function ratioEstimate(s: RatioSummary): { ratio: number; varianceOfRatio: number; unitVariance: number } {
  const ratio = s.meanNumerator / s.meanDenominator;
  // Per-unit linearised variance: (Var N − 2R Cov(N, D) + R² Var D) / μ_D².
  const unitVariance =
    (s.varianceNumerator - 2 * ratio * s.covariance + ratio * ratio * s.varianceDenominator) / (s.meanDenominator * s.meanDenominator);
  return { ratio, varianceOfRatio: unitVariance / s.n, unitVariance };
}

/** Difference of two ratio metrics with delta-method variances, z-test and normal-quantile interval. */
export function ratioTest(control: RatioSummary, treatment: RatioSummary, options: ComparisonOptions = {}): Comparison {
  const c = ratioEstimate(control);
  const t = ratioEstimate(treatment);
  return normalComparison(c.ratio, c.varianceOfRatio, t.ratio, t.varianceOfRatio, options.confidence ?? 0.95);
}

/** One arm's estimate within one stratum, or combined over strata. */
export interface ArmEstimate {
  /** Units behind the estimate. */
  n: number;
  estimate: number;
  /** Variance of the estimate (not per unit). */
  varianceOfEstimate: number;
}

/**
 * Post-stratification: per arm, the strata's estimates weighted by each stratum's share of all
 * the strata's units (every arm's), so each arm is compared over the same mix of strata. Used for
 * the phases of a ramped experiment, whose arms' shares differ from phase to phase: pooling
 * their units would weigh each arm's phases differently (ADR 0009). Every stratum must hold
 * every arm, in the same order.
 */
export function poststratify(strata: readonly (readonly ArmEstimate[])[]): ArmEstimate[] {
  const size = (s: readonly ArmEstimate[]) => s.reduce((a, arm) => a + arm.n, 0);
  const total = strata.reduce((a, s) => a + size(s), 0);
  const arms = strata[0]?.length ?? 0;
  return Array.from({ length: arms }, (_, i) => {
    let n = 0;
    let estimate = 0;
    let varianceOfEstimate = 0;
    for (const s of strata) {
      const w = size(s) / total;
      const arm = s[i]!;
      n += arm.n;
      estimate += w * arm.estimate;
      varianceOfEstimate += w * w * arm.varianceOfEstimate;
    }
    return { n, estimate, varianceOfEstimate };
  });
}
