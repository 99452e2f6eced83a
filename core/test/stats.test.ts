import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  chiSquareSf,
  erf,
  erfc,
  normalCdf,
  normalQuantile,
  normalSf,
  proportionTest,
  ratioTest,
  regularizedBeta,
  regularizedGammaQ,
  srm,
  studentTCdf,
  studentTQuantile,
  studentTSf,
  welchTest,
} from '../src/index.ts';

interface MeanCase {
  kind: 'mean';
  control: { n: number; mean: number; variance: number };
  treatment: { n: number; mean: number; variance: number };
  expected: Record<string, number | number[]>;
}
interface ProportionCase {
  kind: 'proportion';
  control: { n: number; conversions: number };
  treatment: { n: number; conversions: number };
  expected: Record<string, number | number[]>;
}
interface SrmCase {
  kind: 'srm';
  counts: number[];
  weights: number[];
  expected: { chi2: number; pValue: number; mismatch: boolean };
}
type Case = MeanCase | ProportionCase | SrmCase;

const vectors: { cases: Case[] } = JSON.parse(readFileSync(new URL('../test-vectors/stats.json', import.meta.url), 'utf8'));
const means = vectors.cases.filter((c): c is MeanCase => c.kind === 'mean');
const proportions = vectors.cases.filter((c): c is ProportionCase => c.kind === 'proportion');
const srms = vectors.cases.filter((c): c is SrmCase => c.kind === 'srm');

/** The vectors' tolerance: relative 1e-6, absolute 1e-9 near zero. */
function close(actual: number, expected: number, rel = 1e-6, abs = 1e-9): boolean {
  return Math.abs(actual - expected) <= Math.max(abs, rel * Math.abs(expected));
}

function expectClose(actual: unknown, expected: number | number[], field: string, rel?: number, abs?: number): void {
  const a = Array.isArray(expected) ? (actual as number[]) : [actual as number];
  const e = Array.isArray(expected) ? expected : [expected];
  expect(a.length, field).toBe(e.length);
  e.forEach((x, i) => {
    const ok = close(a[i]!, x, rel, abs);
    expect(ok, `${field}[${i}]: got ${a[i]}, expected ${x}`).toBe(true);
  });
}

function expectAll(actual: object, expected: Record<string, number | number[]>): void {
  for (const [field, value] of Object.entries(expected)) {
    expect(actual, field).toHaveProperty(field);
    expectClose((actual as Record<string, unknown>)[field], value, field);
  }
}

describe('stats.json reference vectors (scipy)', () => {
  it('holds 60 cases of each kind', () => {
    expect([means.length, proportions.length, srms.length]).toEqual([60, 60, 60]);
  });

  it.each(means.map((c, i) => [i, c] as const))('Welch t-test, case %i', (_i, c) => {
    expectAll(welchTest(c.control, c.treatment), c.expected);
  });

  it.each(proportions.map((c, i) => [i, c] as const))('two-proportion z-test, case %i', (_i, c) => {
    expectAll(proportionTest(c.control, c.treatment), c.expected);
  });

  it.each(srms.map((c, i) => [i, c] as const))('SRM chi-square, case %i', (_i, c) => {
    const r = srm(c.counts, c.weights);
    expectClose(r.chi2, c.expected.chi2, 'chi2');
    expectClose(r.pValue, c.expected.pValue, 'pValue');
    expect(r.mismatch).toBe(c.expected.mismatch);
  });
});

describe('distributions against closed forms and identities', () => {
  // Values fixed by mathematics, not by this code: Φ⁻¹(0.975), erf(1), erfc(5), t(10) quantile.
  it('knows the classic constants', () => {
    expectClose(normalQuantile(0.975), 1.959963984540054, 'z0.975', 1e-14);
    expectClose(erf(1), 0.8427007929497149, 'erf(1)', 1e-14);
    expectClose(erfc(5), 1.5374597944280349e-12, 'erfc(5)', 1e-13, 0);
    expectClose(studentTQuantile(0.975, 10), 2.2281388519649385, 't(0.975, 10)', 1e-12);
    expectClose(chiSquareSf(3.841458820694124, 1), 0.05, 'chi2(1) 95%', 1e-12);
  });

  it.each([-30, -8, -3, -1, -0.2, 0, 0.3, 1.5, 4.2, 9, 37])('Φ(%d) and 1 − Φ agree with erfc and sum to one', (z) => {
    expect(normalCdf(z) + normalSf(z)).toBeCloseTo(1, 14);
    expectClose(normalSf(z), normalCdf(-z), 'symmetry', 1e-15, 0);
  });

  it.each([1e-300, 1e-100, 1e-20, 1e-8, 0.001, 0.02, 0.3, 0.5, 0.77, 0.975, 0.999999])('Φ(Φ⁻¹(%d)) round-trips', (p) => {
    const x = normalQuantile(p);
    expectClose(p <= 0.5 ? normalCdf(x) : normalSf(x), p <= 0.5 ? p : 1 - p, 'round trip', 1e-13, 0);
  });

  it.each([0.001, 0.5, 2, 7.5, 40])('t(1) is Cauchy and t(2) has a closed form at t = %d', (t) => {
    expectClose(studentTSf(t, 1), 0.5 - Math.atan(t) / Math.PI, 'cauchy', 1e-13, 0);
    expectClose(studentTSf(t, 2), 0.5 - t / (2 * Math.sqrt(2 + t * t)), 't2', 1e-12, 0);
  });

  it.each([1, 3, 17.5, 250, 3e5, 1e8])('t(ν=%d) quantile inverts the cdf, and the tail tends to the normal', (df) => {
    for (const p of [1e-12, 0.001, 0.025, 0.3, 0.9, 0.975]) {
      const t = studentTQuantile(p, df);
      expectClose(studentTCdf(t, df), p, `cdf(q(${p}))`, 1e-11, 0);
    }
    if (df >= 1e8) expectClose(studentTSf(5, df), normalSf(5), 'normal limit', 1e-5, 0);
  });

  it.each([0.5, 1, 4, 30, 200])('chi-square(2) survival is exp(−x/2) at x = %d', (x) => {
    expectClose(chiSquareSf(x, 2), Math.exp(-x / 2), 'chi2(2)', 1e-13, 0);
  });

  it('incomplete beta and gamma satisfy their symmetries', () => {
    for (const [x, a, b] of [[0.2, 2, 3], [0.9, 0.5, 40], [0.001, 1000, 0.5], [0.6, 12, 12]] as const) {
      expect(regularizedBeta(x, a, b) + regularizedBeta(1 - x, b, a)).toBeCloseTo(1, 13);
    }
    // I_x(1, b) = 1 − (1 − x)^b and Q(1, x) = exp(−x).
    expectClose(regularizedBeta(0.3, 1, 4.5), 1 - Math.pow(0.7, 4.5), 'I(1,b)', 1e-13, 0);
    expectClose(regularizedGammaQ(1, 12), Math.exp(-12), 'Q(1,x)', 1e-13, 0);
  });
});

describe('comparisons in degenerate and ratio cases', () => {
  it('ratio test equals the z-test of the linearised metric', () => {
    const control = { n: 1000, meanNumerator: 2, meanDenominator: 10, varianceNumerator: 4, varianceDenominator: 30, covariance: 6 };
    const treatment = { n: 1200, meanNumerator: 2.3, meanDenominator: 10.5, varianceNumerator: 5, varianceDenominator: 33, covariance: 7 };
    const r = ratioTest(control, treatment);
    const rc = 0.2;
    const rt = 2.3 / 10.5;
    const vc = (4 - 2 * rc * 6 + rc * rc * 30) / 100 / 1000;
    const vt = (5 - 2 * rt * 7 + rt * rt * 33) / (10.5 * 10.5) / 1200;
    expectClose(r.diff, rt - rc, 'diff', 1e-14);
    expectClose(r.se, Math.sqrt(vc + vt), 'se', 1e-14);
    expectClose(r.pValue, erfc(Math.abs(rt - rc) / Math.sqrt(vc + vt) / Math.SQRT2), 'p', 1e-14);
  });

  it('zero variance and empty arms give defined answers instead of throwing', () => {
    const same = proportionTest({ n: 100, conversions: 0 }, { n: 100, conversions: 0 });
    expect(same.pValue).toBe(1);
    expect(same.probabilityToBeat).toBe(0.5);
    expect(same.relLift).toBeNaN();
    const tiny = welchTest({ n: 1, mean: 1, variance: 0 }, { n: 5, mean: 2, variance: 1 });
    expect(tiny.pValue).toBeNaN();
    expect(srm([0, 0], [50, 50])).toMatchObject({ pValue: 1, mismatch: false });
    expect(srm([10, 3], [100, 0])).toMatchObject({ pValue: 0, mismatch: true });
  });
});
