import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { adjustPValues, cupedTest, erfc, mixingVariance, normalComparison, sequentialPValue, widenedInterval, type CupedSums } from '../src/index.ts';
import { createRng } from './support/rollout-sim.ts';

interface CupedCase {
  kind: 'cuped';
  metric: string;
  control: CupedSums;
  treatment: CupedSums;
  expected: {
    theta: number;
    adjustedMeans: [number, number];
    diff: number;
    se: number;
    ci95: [number, number];
    pValue: number;
    relLift: number;
    relCi95: [number, number];
    probabilityToBeat: number;
    varianceReduction: number;
  };
}
interface CorrectionCase {
  kind: 'correction';
  method: 'holm' | 'bh';
  alpha: number;
  pValues: number[];
  expected: { adjusted: number[]; rejected: boolean[] };
}
type Case = CupedCase | CorrectionCase;

const vectors: { cases: Case[] } = JSON.parse(readFileSync(new URL('../test-vectors/analysis.json', import.meta.url), 'utf8'));
const cuped = vectors.cases.filter((c): c is CupedCase => c.kind === 'cuped');
const corrections = vectors.cases.filter((c): c is CorrectionCase => c.kind === 'correction');

/** The vectors' tolerance: relative 1e-6, absolute 1e-9. */
function close(actual: number, expected: number): boolean {
  return Math.abs(actual - expected) <= Math.max(1e-9, 1e-6 * Math.abs(expected));
}

describe('analysis.json reference vectors (scipy, statsmodels)', () => {
  it('holds every kind of case', () => {
    expect([cuped.length, corrections.length]).toEqual([40, 80]);
    expect(new Set(cuped.map((c) => c.metric))).toEqual(new Set(['mean', 'proportion']));
    expect(new Set(corrections.map((c) => c.method))).toEqual(new Set(['holm', 'bh']));
  });

  it.each(cuped.map((c, i) => [i, c.metric, c] as const))('CUPED, case %i (%s)', (_i, _m, c) => {
    const r = cupedTest(c.control, c.treatment);
    const e = c.expected;
    const got: Record<string, number> = {
      theta: r.theta,
      adjustedControl: r.adjustedMeans[0],
      adjustedTreatment: r.adjustedMeans[1],
      diff: r.diff,
      se: r.se,
      ciLow: r.ci95[0],
      ciHigh: r.ci95[1],
      pValue: r.pValue,
      relLift: r.relLift,
      relLow: r.relCi95[0],
      relHigh: r.relCi95[1],
      probabilityToBeat: r.probabilityToBeat,
      varianceReduction: r.varianceReduction,
    };
    const want: Record<string, number> = {
      theta: e.theta,
      adjustedControl: e.adjustedMeans[0],
      adjustedTreatment: e.adjustedMeans[1],
      diff: e.diff,
      se: e.se,
      ciLow: e.ci95[0],
      ciHigh: e.ci95[1],
      pValue: e.pValue,
      relLift: e.relLift,
      relLow: e.relCi95[0],
      relHigh: e.relCi95[1],
      probabilityToBeat: e.probabilityToBeat,
      varianceReduction: e.varianceReduction,
    };
    for (const k of Object.keys(want)) expect(close(got[k]!, want[k]!), `${k}: got ${got[k]}, expected ${want[k]}`).toBe(true);
  });

  it.each(corrections.map((c, i) => [i, c.method, c.pValues.length, c] as const))('correction, case %i (%s, %i p-values)', (_i, _m, _n, c) => {
    const adjusted = adjustPValues(c.pValues, c.method);
    adjusted.forEach((p, k) => expect(close(p, c.expected.adjusted[k]!), `p ${k}: got ${p}, expected ${c.expected.adjusted[k]}`).toBe(true));
    expect(adjusted.map((p) => p <= c.alpha)).toEqual(c.expected.rejected);
  });
});

describe('corrections beyond the vectors', () => {
  it('leave p-values alone with none, and skip NaN (not a test)', () => {
    expect(adjustPValues([0.01, 0.2], 'none')).toEqual([0.01, 0.2]);
    const holm = adjustPValues([0.01, NaN, 0.04], 'holm');
    expect(holm[1]).toBeNaN();
    expect(holm[0]).toBeCloseTo(0.02, 15);
    expect(holm[2]).toBeCloseTo(0.04, 15);
  });

  it('widen an interval so it excludes 0 exactly when the adjusted p is below α', () => {
    // z = 3.18 (p ≈ 0.0015) stays significant after ×3; z = 2.33 (p ≈ 0.02) does not.
    for (const diff of [0.045, 0.033]) {
      const c = normalComparison(0.1, 0.0001, 0.1 + diff, 0.0001, 0.95);
      expect(c.ci95[0]).toBeGreaterThan(0);
      const [lo, hi] = widenedInterval(c.diff, c.se, c.pValue, Math.min(1, c.pValue * 3));
      expect(hi - lo).toBeGreaterThan(c.ci95[1] - c.ci95[0]);
      expect(lo > 0).toBe(c.pValue * 3 < 0.05);
    }
    const c = normalComparison(0.1, 0.0001, 0.145, 0.0001, 0.95);
    // Unadjusted: the same interval.
    const same = widenedInterval(c.diff, c.se, c.pValue, c.pValue);
    expect(same[0]).toBeCloseTo(c.ci95[0], 12);
    // At the edge: p_adj = α puts a bound on 0.
    const edge = widenedInterval(c.diff, c.se, c.pValue, 0.05);
    expect(edge[0]).toBeCloseTo(0, 12);
  });
});

/**
 * Seeded simulation of the corrections' error rates: 6 independent two-sided z-tests per
 * experiment (3 metrics × 2 treatments), 4,000 experiments.
 */
describe('corrections in simulation', () => {
  const rng = createRng(113);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const pOf = (z: number) => erfc(Math.abs(z) / Math.SQRT2);
  const runs = 4000;

  it('keep the family-wise error at α under the global null (Holm), where raw p-values do not', () => {
    let raw = 0;
    let holm = 0;
    let bh = 0;
    for (let r = 0; r < runs; r++) {
      const p = Array.from({ length: 6 }, () => pOf(normal()));
      if (p.some((x) => x < 0.05)) raw++;
      if (adjustPValues(p, 'holm').some((x) => x < 0.05)) holm++;
      if (adjustPValues(p, 'bh').some((x) => x < 0.05)) bh++;
    }
    // 1 − 0.95⁶ = 26.5% without a correction; the binomial standard error at 5% is 0.34 pp.
    expect(raw / runs).toBeGreaterThan(0.23);
    expect(holm / runs).toBeLessThan(0.06);
    expect(bh / runs).toBeLessThan(0.06);
  });

  it('keep the false discovery rate at α with BH when some effects are real, and find more of them than Holm', () => {
    let fdp = 0;
    let foundBh = 0;
    let foundHolm = 0;
    for (let r = 0; r < runs; r++) {
      // Tests 0–2 have a real effect (z shifted by 3), 3–5 none.
      const p = Array.from({ length: 6 }, (_, i) => pOf(normal() + (i < 3 ? 3 : 0)));
      const bh = adjustPValues(p, 'bh').map((x) => x < 0.05);
      const rejected = bh.filter(Boolean).length;
      if (rejected > 0) fdp += bh.filter((x, i) => x && i >= 3).length / rejected;
      foundBh += bh.filter((x, i) => x && i < 3).length;
      foundHolm += adjustPValues(p, 'holm').filter((x, i) => x < 0.05 && i < 3).length;
    }
    expect(fdp / runs).toBeLessThan(0.05);
    expect(foundBh).toBeGreaterThan(foundHolm);
  });
});

/**
 * Seeded A/A experiments with a covariate correlated with the outcome (ρ = 0.7), watched at 10
 * looks: CUPED keeps the sequential false-positive rate under α and removes about ρ² of the
 * variance.
 */
describe('CUPED in simulation', () => {
  it('keeps the A/A false-positive rate at most α (sequential, 10 looks) and reduces the variance by about ρ²', () => {
    const rng = createRng(2026);
    const normal = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    const rho = 0.7;
    const runs = 1000;
    const perLook = 100;
    let sequentialHits = 0;
    let fixedHits = 0;
    const reductions: number[] = [];
    for (let r = 0; r < runs; r++) {
      const arms = [0, 1].map(() => ({ n: 0, sumY: 0, sumY2: 0, sumX: 0, sumX2: 0, sumXY: 0 }));
      let minP = 1;
      for (let look = 0; look < 10; look++) {
        for (const a of arms) {
          for (let i = 0; i < perLook; i++) {
            const x = normal();
            const y = 3 + rho * x + Math.sqrt(1 - rho * rho) * normal();
            a.n++;
            a.sumY += y;
            a.sumY2 += y * y;
            a.sumX += x;
            a.sumX2 += x * x;
            a.sumXY += x * y;
          }
        }
        const c = cupedTest(arms[0]!, arms[1]!);
        const unit = c.adjustedVariancesOfMean.map((v, i) => v * arms[i]!.n);
        minP = Math.min(minP, sequentialPValue(c.diff, c.se * c.se, mixingVariance(unit[0]!, unit[1]!)));
        if (look === 9) {
          if (c.pValue < 0.05) fixedHits++;
          reductions.push(c.varianceReduction);
        }
      }
      if (minP < 0.05) sequentialHits++;
    }
    expect(sequentialHits / runs).toBeLessThanOrEqual(0.05);
    // The fixed-horizon test at the last look alone is at its nominal level too.
    expect(fixedHits / runs).toBeGreaterThan(0.03);
    expect(fixedHits / runs).toBeLessThan(0.07);
    const meanReduction = reductions.reduce((a, b) => a + b, 0) / runs;
    expect(meanReduction).toBeGreaterThan(rho * rho - 0.02);
    expect(meanReduction).toBeLessThan(rho * rho + 0.02);
  });
});
