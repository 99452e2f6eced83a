import { describe, expect, it } from 'vitest';
import { experimentPhases, normalComparison, poststratify, proportionTest, srm, srmAcrossGroups, withNewPhase, type Experiment } from '../src/index.ts';
import { createRng } from './support/rollout-sim.ts';

const base = {
  key: 'e',
  route: 'r',
  layer: 'e',
  trafficPercent: 100,
  allocation: { start: 0, end: 10_000 },
  salt: '',
  targeting: [],
  overrides: {},
  metrics: { guardrails: [] },
  status: 'running',
  version: 3,
  createdAt: '2026-11-01T00:00:00.000Z',
  updatedAt: '2026-11-01T00:00:00.000Z',
  variants: [
    { key: 'control', weight: 75, params: {} },
    { key: 'treatment', weight: 25, params: {} },
  ],
} as unknown as Experiment;

describe('experiment phases', () => {
  it('are the recorded phases, or what an experiment stored before them knows', () => {
    expect(experimentPhases({ ...base, startedAt: undefined })).toEqual([]);
    expect(experimentPhases({ ...base, startedAt: '2026-11-02T00:00:00.000Z' })).toEqual([{ startedAt: Date.parse('2026-11-02T00:00:00.000Z'), weights: { control: 75, treatment: 25 } }]);
    // Ramped before phases were kept: the weights before the last change are unknown.
    expect(experimentPhases({ ...base, startedAt: '2026-11-02T00:00:00.000Z', weightsChangedAt: '2026-11-03T00:00:00.000Z' })).toEqual([
      { startedAt: Date.parse('2026-11-02T00:00:00.000Z'), weights: null },
      { startedAt: Date.parse('2026-11-03T00:00:00.000Z'), weights: { control: 75, treatment: 25 } },
    ]);
  });

  it('grow by one per weight change, keeping the ones before', () => {
    const started = { ...base, startedAt: '2026-11-02T00:00:00.000Z', phases: [{ startedAt: '2026-11-02T00:00:00.000Z', weights: { control: 95, treatment: 5 } }] };
    const after = { variants: base.variants.map((v) => ({ ...v, weight: 50 })) };
    expect(withNewPhase(started, after, '2026-11-04T00:00:00.000Z')).toEqual([
      { startedAt: '2026-11-02T00:00:00.000Z', weights: { control: 95, treatment: 5 } },
      { startedAt: '2026-11-04T00:00:00.000Z', weights: { control: 50, treatment: 50 } },
    ]);
    expect(withNewPhase({ ...base, startedAt: '2026-11-02T00:00:00.000Z', weightsChangedAt: '2026-11-03T00:00:00.000Z' }, after, '2026-11-04T00:00:00.000Z')).toEqual([
      { startedAt: '2026-11-02T00:00:00.000Z', weights: null },
      { startedAt: '2026-11-03T00:00:00.000Z', weights: { control: 75, treatment: 25 } },
      { startedAt: '2026-11-04T00:00:00.000Z', weights: { control: 50, treatment: 50 } },
    ]);
  });
});

describe('the sample-ratio check across phases', () => {
  it('adds the phases’ statistics and degrees of freedom', () => {
    const a = srm([940, 60], [95, 5]);
    const b = srm([510, 490], [50, 50]);
    const both = srmAcrossGroups([
      { counts: [940, 60], weights: [95, 5] },
      { counts: [510, 490], weights: [50, 50] },
    ]);
    expect(both.chi2).toBeCloseTo(a.chi2 + b.chi2, 12);
    expect(both.df).toBe(2);
    // Checking all units against the last weights would call the ramp a mismatch.
    expect(srm([1450, 550], [50, 50]).mismatch).toBe(true);
    expect(both.mismatch).toBe(false);
  });

  it('ignores empty phases and flags units in a zero-weight variant', () => {
    expect(srmAcrossGroups([{ counts: [0, 0], weights: [50, 50] }, { counts: [500, 500], weights: [50, 50] }])).toMatchObject({ df: 1, pValue: 1, mismatch: false });
    expect(srmAcrossGroups([{ counts: [10, 1], weights: [100, 0] }])).toMatchObject({ pValue: 0, mismatch: true });
    expect(srmAcrossGroups([])).toMatchObject({ pValue: 1, mismatch: false });
  });
});

describe('post-stratification', () => {
  it('weights each stratum by its share of all units, the same for every arm', () => {
    const [c, t] = poststratify([
      [{ n: 300, estimate: 0.1, varianceOfEstimate: 0.0003 }, { n: 100, estimate: 0.2, varianceOfEstimate: 0.0016 }],
      [{ n: 300, estimate: 0.5, varianceOfEstimate: 0.0008 }, { n: 300, estimate: 0.6, varianceOfEstimate: 0.0008 }],
    ]);
    expect(c!.n).toBe(600);
    expect(c!.estimate).toBeCloseTo(0.4 * 0.1 + 0.6 * 0.5, 12);
    expect(t!.estimate).toBeCloseTo(0.4 * 0.2 + 0.6 * 0.6, 12);
    expect(t!.varianceOfEstimate).toBeCloseTo(0.16 * 0.0016 + 0.36 * 0.0008, 15);
    // One stratum is the plain estimate.
    expect(poststratify([[{ n: 5, estimate: 2, varianceOfEstimate: 1 }, { n: 5, estimate: 3, varianceOfEstimate: 1 }]])).toEqual([
      { n: 5, estimate: 2, varianceOfEstimate: 1 },
      { n: 5, estimate: 3, varianceOfEstimate: 1 },
    ]);
  });

  /**
   * Seeded A/A rollouts through the default plan's steps (95/5 → 75/25 → 50/50) whose
   * conversion rate rises from phase to phase, as when later phases' units are measured over
   * other days. Within a phase both arms are the same.
   */
  it('keeps an A/A rollout at its nominal false-positive rate where pooling the phases does not', () => {
    const rng = createRng(20261203);
    const binomial = (n: number, p: number) => {
      let k = 0;
      for (let i = 0; i < n; i++) if (rng() < p) k++;
      return k;
    };
    const phases = [
      { units: 400, treatment: 0.05, p: 0.1 },
      { units: 600, treatment: 0.25, p: 0.2 },
      { units: 1000, treatment: 0.5, p: 0.3 },
    ];
    const runs = 2000;
    let stratifiedHits = 0;
    let pooledHits = 0;
    for (let r = 0; r < runs; r++) {
      const strata = phases.map((ph) => {
        const nt = binomial(ph.units, ph.treatment);
        const arm = (n: number) => {
          const p = binomial(n, ph.p) / n;
          return { n, estimate: p, varianceOfEstimate: (p * (1 - p)) / n };
        };
        return [arm(ph.units - nt), arm(nt)];
      });
      const [c, t] = poststratify(strata);
      if (normalComparison(c!.estimate, c!.varianceOfEstimate, t!.estimate, t!.varianceOfEstimate, 0.95).pValue < 0.05) stratifiedHits++;
      const conversions = (i: number) => strata.reduce((a, s) => a + Math.round(s[i]!.estimate * s[i]!.n), 0);
      const units = (i: number) => strata.reduce((a, s) => a + s[i]!.n, 0);
      if (proportionTest({ n: units(0), conversions: conversions(0) }, { n: units(1), conversions: conversions(1) }).pValue < 0.05) pooledHits++;
    }
    // 2,000 runs: the binomial standard error of a 5% rate is 0.5 pp.
    expect(stratifiedHits / runs).toBeGreaterThan(0.035);
    expect(stratifiedHits / runs).toBeLessThan(0.065);
    expect(pooledHits / runs).toBeGreaterThan(0.5);
  });
});
