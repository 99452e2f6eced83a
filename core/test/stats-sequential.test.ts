import { describe, expect, it } from 'vitest';
import { alwaysValid, erfc, mixingVariance, proportionTest, sequentialPValue, welchTest } from '../src/index.ts';

/**
 * A/A simulation (SPEC §6): both arms draw from the same distribution, an analyst looks at the
 * results after every batch of units and stops at the first p < 0.05. Peeking inflates the
 * fixed-horizon test's false positives far above 5%; the mSPRT's always-valid p-value keeps them
 * at or below 5%.
 */

const EXPERIMENTS = 600;
const PEEKS = 20;
const UNITS_PER_PEEK = 200; // per arm
const ALPHA = 0.05;

/** sfc32: a small, fast, seedable generator; the simulation must be reproducible. */
function sfc32(a: number, b: number, c: number, d: number): () => number {
  return () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

interface Arm {
  n: number;
  sum: number;
  sumSq: number;
}

/** Sample mean and variance from running sums (values here are O(1), so the sums do not cancel). */
function summary(arm: Arm): { n: number; mean: number; variance: number } {
  const mean = arm.sum / arm.n;
  return { n: arm.n, mean, variance: (arm.sumSq - arm.n * mean * mean) / (arm.n - 1) };
}

interface Rates {
  peeking: number;
  sequential: number;
  finalOnly: number;
}

function simulate(seed: number, draw: (rng: () => number) => number, compare: (c: Arm, t: Arm) => { diff: number; se: number; pValue: number; uc: number; ut: number }): Rates {
  const rng = sfc32(0x9e3779b9, 0x243f6a88, 0xb7e15162, seed);
  for (let i = 0; i < 20; i++) rng();
  let peeking = 0;
  let sequential = 0;
  let finalOnly = 0;
  for (let e = 0; e < EXPERIMENTS; e++) {
    const arms: [Arm, Arm] = [
      { n: 0, sum: 0, sumSq: 0 },
      { n: 0, sum: 0, sumSq: 0 },
    ];
    let anyFixed = false;
    const seq: number[] = [];
    let last = 1;
    for (let k = 0; k < PEEKS; k++) {
      for (const arm of arms) {
        for (let u = 0; u < UNITS_PER_PEEK; u++) {
          const x = draw(rng);
          arm.n++;
          arm.sum += x;
          arm.sumSq += x * x;
        }
      }
      const r = compare(arms[0], arms[1]);
      if (r.pValue < ALPHA) anyFixed = true;
      seq.push(sequentialPValue(r.diff, r.se * r.se, mixingVariance(r.uc, r.ut)));
      last = r.pValue;
    }
    if (anyFixed) peeking++;
    if (alwaysValid(seq).at(-1)! < ALPHA) sequential++;
    if (last < ALPHA) finalOnly++;
  }
  if (process.env.BUNRYU_PRINT_AA) process.stdout.write(`A/A seed ${seed}: peeking ${peeking / EXPERIMENTS}, sequential ${sequential / EXPERIMENTS}, final only ${finalOnly / EXPERIMENTS}\n`);
  return { peeking: peeking / EXPERIMENTS, sequential: sequential / EXPERIMENTS, finalOnly: finalOnly / EXPERIMENTS };
}

describe(`A/A simulation: ${EXPERIMENTS} experiments × ${PEEKS} peeks`, () => {
  it('conversion metric: peeking at the z-test inflates false positives, the always-valid p-value does not', () => {
    const p = 0.1;
    const rates = simulate(
      1,
      (rng) => (rng() < p ? 1 : 0),
      (c, t) => {
        const r = proportionTest({ n: c.n, conversions: c.sum }, { n: t.n, conversions: t.sum });
        const pc = c.sum / c.n;
        const pt = t.sum / t.n;
        return { diff: r.diff, se: r.se, pValue: r.pValue, uc: pc * (1 - pc), ut: pt * (1 - pt) };
      },
    );
    expect(rates.sequential).toBeLessThanOrEqual(ALPHA);
    expect(rates.peeking).toBeGreaterThan(ALPHA);
    expect(rates.peeking).toBeGreaterThan(rates.sequential);
    // The fixed-horizon test looked at once is calibrated: about 5% (binomial 99.9% band for 600 runs).
    expect(rates.finalOnly).toBeGreaterThan(0.02);
    expect(rates.finalOnly).toBeLessThan(0.09);
  });

  it('skewed revenue-like metric with Welch: the same holds', () => {
    // Log-normal values (heavy right tail), the usual shape of revenue or dwell time.
    const rates = simulate(
      2,
      (rng) => {
        const z = Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
        return Math.exp(0.5 * z);
      },
      (c, t) => {
        const sc = summary(c);
        const st = summary(t);
        const r = welchTest(sc, st);
        return { diff: r.diff, se: r.se, pValue: r.pValue, uc: sc.variance, ut: st.variance };
      },
    );
    expect(rates.sequential).toBeLessThanOrEqual(ALPHA);
    expect(rates.peeking).toBeGreaterThan(ALPHA);
    expect(rates.peeking).toBeGreaterThan(rates.sequential);
  });
});

describe('sequentialPValue', () => {
  it('is 1 without evidence and falls as the same effect is seen on more data', () => {
    expect(sequentialPValue(0, 1, 1)).toBe(1);
    const tau2 = mixingVariance(1, 1);
    // A fixed true effect of 0.1σ estimated ever more precisely.
    const ps = [1e2, 1e3, 1e4, 1e5].map((n) => sequentialPValue(0.1, 2 / n, tau2));
    for (let i = 1; i < ps.length; i++) expect(ps[i]!).toBeLessThan(ps[i - 1]!);
    expect(ps.at(-1)!).toBeLessThan(1e-6);
  });

  it('is never below the fixed-horizon p-value of the same estimate', () => {
    // 1/Λ ≥ √(1 + τ²/v)·exp(−z²/2) ≥ erfc(|z|/√2): the price of being allowed to peek.
    const tau2 = mixingVariance(1, 1);
    for (const v of [1e-2, 1e-4, 1e-6]) {
      for (const z of [0.5, 1.96, 3, 5, 10, 30]) {
        const diff = z * Math.sqrt(v);
        expect(sequentialPValue(diff, v, tau2)).toBeGreaterThanOrEqual(erfc(z / Math.SQRT2));
      }
    }
  });

  it('alwaysValid keeps the running minimum', () => {
    expect(alwaysValid([1, 0.5, 0.7, 0.2, NaN, 0.3])).toEqual([1, 0.5, 0.5, 0.2, 0.2, 0.2]);
  });
});
