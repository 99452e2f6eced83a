import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { proportionTest, ratioTest, relativeLift, srm, studentTCdf, studentTQuantile, studentTTwoSided, welchTest, type Comparison } from '../src/index.ts';

/**
 * What must hold for any data the aggregator can hand over (the test vectors pin exact values
 * on chosen cases): probabilities are probabilities, intervals are ordered around their
 * estimate, and what cannot be computed is NaN (rendered as null), never Infinity or a throw.
 */

/** `finite`: the data is of sizes real metrics have, so every bound that is not NaN is finite. */
function wellFormed(c: Comparison, finite: boolean) {
  const probability = (p: number) => Number.isNaN(p) || (p >= 0 && p <= 1);
  expect(probability(c.pValue), `pValue ${c.pValue}`).toBe(true);
  expect(probability(c.probabilityToBeat), `probabilityToBeat ${c.probabilityToBeat}`).toBe(true);
  for (const [estimate, [low, high]] of [[c.diff, c.ci95], [c.relLift, c.relCi95]] as const) {
    if (Number.isNaN(low) || Number.isNaN(high)) continue;
    if (finite) expect(Number.isFinite(low) && Number.isFinite(high), `interval [${low}, ${high}]`).toBe(true);
    expect(low).toBeLessThanOrEqual(estimate);
    expect(estimate).toBeLessThanOrEqual(high);
  }
  // A zero difference is never significant; an interval that excludes zero is (for the same test).
  if (c.diff === 0 && Number.isFinite(c.pValue)) expect(c.pValue).toBeGreaterThan(0.05);
  if (c.ci95[0] > 0 || c.ci95[1] < 0) expect(c.pValue).toBeLessThan(0.05 + 1e-9);
}

const units = fc.integer({ min: 0, max: 10_000_000 });
const proportionArm = units.chain((n) => fc.record({ n: fc.constant(n), conversions: fc.integer({ min: 0, max: n }) }));
/** Any double, denormals and extremes included, or one of the sizes real metrics have (milli-units up to a million). */
const anyNumber = (min: number, max: number) => fc.double({ min, max, noNaN: true });
const realNumber = (min: number, max: number) => fc.integer({ min: min * 1000, max: max * 1000 }).map((i) => i / 1000);

const meanArm = (num: typeof anyNumber) =>
  fc.record({ n: units, mean: num(-1e6, 1e6), variance: fc.oneof(fc.constant(0), num(0, 1e9)) });
const ratioArm = (num: typeof anyNumber) =>
  fc
    .record({
      n: fc.integer({ min: 1, max: 1_000_000 }),
      meanNumerator: num(0, 1e4),
      meanDenominator: num(0.001, 1e4),
      varianceNumerator: num(0, 1e6),
      varianceDenominator: num(0, 1e6),
      correlation: fc.double({ min: -1, max: 1, noNaN: true }),
    })
    .map(({ correlation, ...s }) => ({ ...s, covariance: correlation * Math.sqrt(s.varianceNumerator * s.varianceDenominator) }));

describe('statistics on any data', () => {
  it('two proportions', () => {
    fc.assert(fc.property(proportionArm, proportionArm, (c, t) => wellFormed(proportionTest(c, t), true)), { numRuns: 3000 });
  });

  it.each([
    ['any numbers', anyNumber, false],
    ['real sizes', realNumber, true],
  ] as const)('two means (Welch), %s', (_name, num, finite) => {
    fc.assert(fc.property(meanArm(num), meanArm(num), (c, t) => wellFormed(welchTest(c, t), finite)), { numRuns: 3000 });
  });

  it.each([
    ['any numbers', anyNumber, false],
    ['real sizes', realNumber, true],
  ] as const)('two ratios (delta method), %s', (_name, num, finite) => {
    fc.assert(fc.property(ratioArm(num), ratioArm(num), (c, t) => wellFormed(ratioTest(c, t), finite)), { numRuns: 3000 });
  });

  it('the sample-ratio check', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 1, max: 100 })), { minLength: 2, maxLength: 6 }), (arms) => {
        const r = srm(arms.map(([n]) => n), arms.map(([, w]) => w));
        expect(Number.isNaN(r.pValue) || (r.pValue >= 0 && r.pValue <= 1)).toBe(true);
        expect(r.mismatch).toBe(r.pValue < 0.001);
      }),
      { numRuns: 3000 },
    );
  });

  it('the t quantile inverts the t distribution', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.001, max: 0.999, noNaN: true }), fc.double({ min: 1, max: 1e7, noNaN: true }), (p, df) => {
        expect(studentTCdf(studentTQuantile(p, df), df)).toBeCloseTo(p, 6);
      }),
      { numRuns: 3000 },
    );
  });

  it('cases it found: a p-value an ulp over 1, a relative interval from means too small to square twice, one from a single unit', () => {
    expect(studentTTwoSided(1e-20, 3982441)).toBe(1);
    expect(welchTest({ n: 2, mean: 0, variance: 0 }, { n: 3982442, mean: 1.6255085987292147e-235, variance: 1.0696063935089732e-146 }).pValue).toBe(1);
    const tiny = relativeLift(1e-170, 1e-341, 2e-170, 1e-341);
    expect(tiny.relLift).toBe(1);
    expect(tiny.relCi95.every(Number.isFinite)).toBe(true);
    expect(welchTest({ n: 1, mean: 2, variance: 1 }, { n: 50, mean: 3, variance: 1 }).relCi95).toEqual([NaN, NaN]);
  });
});
