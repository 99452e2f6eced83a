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

/** One arm adjusted by CUPED: its adjusted mean, that mean's variance, and the unadjusted one's. */
export interface AdjustedArm {
  n: number;
  mean: number;
  varianceOfMean: number;
  rawMean: number;
  rawVarianceOfMean: number;
}

/**
 * CUPED over any number of arms: θ = cov(X, Y) / var(X) over all arms together, and each arm's
 * mean moved by θ times its covariate's distance from the overall covariate mean (SPEC §11).
 * With no covariate variance θ is 0 and nothing moves.
 */
export function cupedArms(arms: readonly CupedSums[]): { theta: number; arms: AdjustedArm[] } {
  const total = (k: keyof CupedSums) => arms.reduce((a, arm) => a + arm[k], 0);
  const n = total('n');
  const varX = coVariance(n, total('sumX'), total('sumX'), total('sumX2'));
  const covXY = coVariance(n, total('sumX'), total('sumY'), total('sumXY'));
  const theta = varX > 0 ? covXY / varX : 0;
  const xBar = total('sumX') / n;
  return {
    theta,
    arms: arms.map((a) => {
      const sy2 = coVariance(a.n, a.sumY, a.sumY, a.sumY2);
      const sx2 = coVariance(a.n, a.sumX, a.sumX, a.sumX2);
      const sxy = coVariance(a.n, a.sumX, a.sumY, a.sumXY);
      return {
        n: a.n,
        mean: a.sumY / a.n - theta * (a.sumX / a.n - xBar),
        varianceOfMean: (sy2 + theta * theta * sx2 - 2 * theta * sxy) / a.n,
        rawMean: a.sumY / a.n,
        rawVarianceOfMean: sy2 / a.n,
      };
    }),
  };
}

/**
 * Regression adjustment with a pre-exposure covariate (CUPED, SPEC §11): θ = cov(X, Y) / var(X)
 * over both arms together, each arm's mean adjusted by θ times its covariate's distance from the
 * overall covariate mean, normal-quantile intervals and the delta-method relative lift. With no
 * covariate variance (every X equal) θ is 0 and the result is the unadjusted normal comparison.
 */
export function cupedTest(control: CupedSums, treatment: CupedSums, options: { confidence?: number } = {}): CupedComparison {
  const { theta, arms } = cupedArms([control, treatment]);
  const [c, t] = arms as [AdjustedArm, AdjustedArm];
  const comparison = normalComparison(c.mean, c.varianceOfMean, t.mean, t.varianceOfMean, options.confidence ?? 0.95);
  return {
    ...comparison,
    theta,
    adjustedMeans: [c.mean, t.mean],
    adjustedVariancesOfMean: [c.varianceOfMean, t.varianceOfMean],
    varianceReduction: 1 - (c.varianceOfMean + t.varianceOfMean) / (c.rawVarianceOfMean + t.rawVarianceOfMean),
  };
}
