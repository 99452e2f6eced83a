import { normalComparison, type Comparison } from './comparisons.ts';

/**
 * One arm's sufficient statistics for CUPED (SPEC §11): Y is the metric after the unit's first
 * exposure, X the same metric over the pre-exposure window.
 */
export interface CupedSums {
  n: number;
  sumY: number;
  sumY2: number;
  sumX: number;
  sumX2: number;
  sumXY: number;
}

export interface CupedComparison extends Comparison {
  theta: number;
  /** [control, treatment]: ȳₐ − θ(x̄ₐ − x̄). */
  adjustedMeans: [number, number];
  /** Per arm, the variance of the adjusted mean. */
  adjustedVariancesOfMean: [number, number];
  /** 1 − (variance of the adjusted difference) / (variance of the unadjusted one). */
  varianceReduction: number;
}

/** Sample (co)variance with n − 1 from sums. */
const coVariance = (n: number, sumA: number, sumB: number, sumAB: number) => (sumAB - (sumA * sumB) / n) / (n - 1);

/**
 * Regression adjustment with a pre-exposure covariate (CUPED, SPEC §11): θ = cov(X, Y) / var(X)
 * over both arms together, each arm's mean adjusted by θ times its covariate's distance from the
 * overall covariate mean, normal-quantile intervals and the delta-method relative lift. With no
 * covariate variance (every X equal) θ is 0 and the result is the unadjusted normal comparison.
 */
export function cupedTest(control: CupedSums, treatment: CupedSums, options: { confidence?: number } = {}): CupedComparison {
  const n = control.n + treatment.n;
  const varX = coVariance(n, control.sumX + treatment.sumX, control.sumX + treatment.sumX, control.sumX2 + treatment.sumX2);
  const covXY = coVariance(n, control.sumX + treatment.sumX, control.sumY + treatment.sumY, control.sumXY + treatment.sumXY);
  const theta = varX > 0 ? covXY / varX : 0;
  const xBar = (control.sumX + treatment.sumX) / n;
  const arm = (a: CupedSums) => {
    const sy2 = coVariance(a.n, a.sumY, a.sumY, a.sumY2);
    const sx2 = coVariance(a.n, a.sumX, a.sumX, a.sumX2);
    const sxy = coVariance(a.n, a.sumX, a.sumY, a.sumXY);
    return {
      mean: a.sumY / a.n - theta * (a.sumX / a.n - xBar),
      varOfMean: (sy2 + theta * theta * sx2 - 2 * theta * sxy) / a.n,
      rawVarOfMean: sy2 / a.n,
    };
  };
  const c = arm(control);
  const t = arm(treatment);
  const confidence = options.confidence ?? 0.95;
  const comparison = normalComparison(c.mean, c.varOfMean, t.mean, t.varOfMean, confidence);
  return {
    ...comparison,
    theta,
    adjustedMeans: [c.mean, t.mean],
    adjustedVariancesOfMean: [c.varOfMean, t.varOfMean],
    varianceReduction: 1 - (c.varOfMean + t.varOfMean) / (c.rawVarOfMean + t.rawVarOfMean),
  };
}
