import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  RolloutPlan,
  alwaysValidLowerBound,
  decideRollout,
  defaultRolloutPlan,
  evaluateGuardrails,
  rolloutEditIssues,
  rolloutPlanIssues,
  type RolloutResults,
} from '../src/index.ts';
import { createRng, simulateRollout } from './support/rollout-sim.ts';

/** SPEC §10's example plan, as written there. */
const SPEC_PLAN = {
  steps: [
    { weights: { control: 95, treatment: 5 }, minMinutes: 10, minUnits: 200 },
    { weights: { control: 75, treatment: 25 }, minMinutes: 30, minUnits: 1000 },
    { weights: { control: 50, treatment: 50 }, minMinutes: 60, minUnits: 5000 },
  ],
  guardrails: [
    { metric: 'error_rate', harm: 'increase', margin: 0 },
    { metric: 'latency_ms', harm: 'increase', margin: 0.05 },
  ],
  alpha: 0.05,
  minUnitsForDecision: 100,
  onHarm: 'rollback',
  onSrm: 'pause',
  onNoTraffic: { afterMinutes: 60, action: 'pause' },
  whenDone: 'promote-if-primary-wins',
};

const plan = defaultRolloutPlan(['control', 'treatment']);
const MIN = 60_000;

/** Results with `n` units per variant; error rates and latency means as given, and a primary metric. */
function results(o: { n?: [number, number]; errors?: [number, number]; latency?: [number, number]; srm?: boolean; primary?: { diff: number; p: number }; omit?: string[] } = {}): RolloutResults {
  const [nc, nt] = o.n ?? [6000, 6000];
  const [ec, et] = o.errors ?? [0.01, 0.01];
  const [lc, lt] = o.latency ?? [50, 50];
  const metrics = [
    { metric: 'error_rate', type: 'proportion', variants: [{ key: 'control', units: nc, mean: ec, variance: ec * (1 - ec) }, { key: 'treatment', units: nt, mean: et, variance: et * (1 - et) }], comparisons: [] },
    { metric: 'latency_ms', type: 'mean', variants: [{ key: 'control', units: nc, mean: lc, variance: 400 }, { key: 'treatment', units: nt, mean: lt, variance: 400 }], comparisons: [] },
    { metric: 'ctr', type: 'proportion', variants: [{ key: 'control', units: nc, mean: 0.1, variance: 0.09 }, { key: 'treatment', units: nt, mean: 0.1, variance: 0.09 }], comparisons: [{ variant: 'treatment', baseline: 'control', diff: o.primary?.diff ?? 0, sequentialPValue: o.primary?.p ?? 1 }] },
  ].filter((m) => !o.omit?.includes(m.metric));
  return { variants: [{ key: 'control', units: nc }, { key: 'treatment', units: nt }], srm: { pValue: o.srm ? 1e-6 : 0.5, mismatch: o.srm ?? false }, metrics };
}

const clock = (step: number, minutesIn: number, now = 1_000 * MIN) => ({ step, stepStartedAt: now - minutesIn * MIN, lastTrafficAt: now - MIN });
const NOW = 1_000 * MIN;

describe('the rollout plan', () => {
  it("is SPEC §10's default plan for a control and a treatment", () => {
    expect(plan).toEqual(RolloutPlan.parse(SPEC_PLAN));
  });

  it('names every variant in every step with several treatments, summing to 100', () => {
    const three = defaultRolloutPlan(['control', 'a', 'b']);
    expect(rolloutPlanIssues(three, ['control', 'a', 'b'])).toEqual([]);
    expect(three.steps.map((s) => s.weights)).toEqual([
      { control: 95, a: 2.5, b: 2.5 },
      { control: 75, a: 12.5, b: 12.5 },
      { control: 50, a: 25, b: 25 },
    ]);
    expect(rolloutPlanIssues(defaultRolloutPlan(['c', 'x', 'y', 'z']), ['c', 'x', 'y', 'z'])).toEqual([]);
  });

  it('refuses steps that miss a variant, name an unknown one, do not sum to 100 or move units back to control', () => {
    const bad = { steps: [{ weights: { control: 90, treatment: 5 } }, { weights: { control: 50, treatment: 40, other: 10 } }, { weights: { control: 80, treatment: 20 } }] } as unknown as RolloutPlan;
    const paths = rolloutPlanIssues(bad, ['control', 'treatment']).map((i) => `${i.path.join('.')}: ${i.message.split(' ').slice(0, 3).join(' ')}`);
    expect(paths).toEqual([
      'rollout.steps.0.weights: weights must sum',
      'rollout.steps.1.weights.other: unknown variant "other"',
      "rollout.steps.2.weights.treatment: a treatment's weight",
    ]);
    expect(rolloutPlanIssues({ steps: [{ weights: { control: 100 } }] } as unknown as RolloutPlan, ['control', 'treatment'])[0]!.path).toEqual(['rollout', 'steps', 0, 'weights', 'treatment']);
  });

  it('lets a running rollout change only the steps still ahead', () => {
    const later = structuredClone(plan);
    later.steps[2]!.weights = { control: 40, treatment: 60 };
    expect(rolloutEditIssues(plan, later, 1, ['control', 'treatment'])).toEqual([]);
    const now = structuredClone(plan);
    now.steps[1]!.weights = { control: 70, treatment: 30 };
    expect(rolloutEditIssues(plan, now, 1, ['control', 'treatment']).map((i) => i.path.join('.'))).toEqual(['rollout.steps.1.weights']);
    expect(rolloutEditIssues(plan, { steps: plan.steps.slice(0, 1) }, 1, ['control', 'treatment']).map((i) => i.path.join('.'))).toEqual(['rollout.steps.1.weights']);
  });
});

describe('decideRollout: every action and every reason to hold', () => {
  it('pauses after an hour without a new unit (onNoTraffic)', () => {
    const d = decideRollout(plan, results({ n: [10, 1] }), { step: 0, stepStartedAt: 0, lastTrafficAt: NOW - 61 * MIN }, NOW);
    expect(d).toMatchObject({ action: 'pause', reason: 'no-traffic' });
  });

  it('holds while any variant has fewer than minUnitsForDecision units, even if the treatment looks terrible', () => {
    const d = decideRollout(plan, results({ n: [5000, 99], errors: [0.01, 0.9] }), clock(0, 500), NOW);
    expect(d).toMatchObject({ action: 'hold', reason: 'min-units-for-decision' });
  });

  it('rolls back on a harmed guardrail, with the evidence', () => {
    const d = decideRollout(plan, results({ n: [2000, 400], errors: [0.01, 0.2] }), clock(0, 1), NOW);
    expect(d).toMatchObject({ action: 'rollback', reason: 'harm' });
    const g = d.evidence.guardrails.find((x) => x.metric === 'error_rate')!;
    expect(g).toMatchObject({ verdict: 'harmed', relative: false, level: 0.025, units: { control: 2000, treatment: 400 } });
    expect(g.bound!).toBeGreaterThan(0);
    expect(g.bound!).toBeLessThan(g.estimate!);
    expect(d.message).toContain('error_rate harmed in treatment');
    expect(decideRollout({ ...plan, onHarm: 'pause' }, results({ n: [2000, 400], errors: [0.01, 0.2] }), clock(0, 1), NOW).action).toBe('pause');
  });

  it('compares relatively beyond a margin: +3% latency is inside a 5% margin, +30% is harm', () => {
    expect(decideRollout(plan, results({ latency: [50, 51.5] }), clock(2, 120), NOW).evidence.guardrails[1]!.verdict).toBe('ok');
    const d = decideRollout(plan, results({ latency: [50, 65] }), clock(2, 120), NOW);
    expect(d).toMatchObject({ action: 'rollback', reason: 'harm' });
    expect(d.evidence.guardrails[1]).toMatchObject({ metric: 'latency_ms', relative: true, verdict: 'harmed' });
    expect(d.evidence.guardrails[1]!.estimate).toBeCloseTo(0.3, 10);
  });

  it('tests a "decrease" guardrail on the upper bound', () => {
    const guarded = { ...plan, guardrails: [{ metric: 'ctr', harm: 'decrease' as const, margin: 0 }] };
    const r = results();
    r.metrics[2]!.variants[1]!.mean = 0.05;
    const d = decideRollout(guarded, r, clock(2, 120), NOW);
    expect(d).toMatchObject({ action: 'rollback', reason: 'harm' });
    expect(d.evidence.guardrails[0]!.bound!).toBeLessThan(0);
  });

  it('pauses on a sample-ratio mismatch, and never advances through one', () => {
    expect(decideRollout(plan, results({ srm: true }), clock(0, 500), NOW)).toMatchObject({ action: 'pause', reason: 'srm' });
  });

  it('holds until the step has lasted minMinutes, then until every variant has minUnits', () => {
    expect(decideRollout(plan, results({ n: [3000, 300] }), clock(0, 9), NOW)).toMatchObject({ action: 'hold', reason: 'step-min-minutes' });
    expect(decideRollout(plan, results({ n: [3000, 150] }), clock(0, 11), NOW)).toMatchObject({ action: 'hold', reason: 'step-min-units' });
  });

  it('holds while a guardrail has not been evaluated (results restricted to serving guardrails)', () => {
    const custom = { ...plan, guardrails: [...plan.guardrails, { metric: 'ctr', harm: 'decrease' as const, margin: 0 }] };
    const d = decideRollout(custom, results({ omit: ['ctr'] }), clock(0, 11), NOW);
    expect(d).toMatchObject({ action: 'hold', reason: 'guardrails-pending' });
    expect(d.message).toContain('ctr (missing)');
  });

  it("ramps to the next step's weights when the step is done", () => {
    expect(decideRollout(plan, results({ n: [3000, 300] }), clock(0, 11), NOW)).toMatchObject({ action: 'ramp', reason: 'advance', toStep: 1, weights: { control: 75, treatment: 25 } });
  });

  it('after the last step promotes only a winning primary', () => {
    const done = clock(2, 61);
    expect(decideRollout(plan, results({ primary: { diff: 0.01, p: 0.01 } }), done, NOW, { primaryMetric: 'ctr' })).toMatchObject({ action: 'promote', reason: 'done-promote', variant: 'treatment' });
    expect(decideRollout(plan, results({ primary: { diff: 0.01, p: 0.2 } }), done, NOW, { primaryMetric: 'ctr' })).toMatchObject({ action: 'hold', reason: 'done-primary-not-winning' });
    expect(decideRollout(plan, results({ primary: { diff: -0.01, p: 0.001 } }), done, NOW, { primaryMetric: 'ctr' })).toMatchObject({ action: 'hold', reason: 'done-primary-not-winning' });
    expect(decideRollout(plan, results(), done, NOW)).toMatchObject({ action: 'hold', reason: 'done-primary-not-winning' });
    expect(decideRollout({ ...plan, whenDone: 'promote' }, results(), done, NOW)).toMatchObject({ action: 'promote', variant: 'treatment' });
    expect(decideRollout({ ...plan, whenDone: 'hold' }, results(), done, NOW)).toMatchObject({ action: 'hold', reason: 'done-hold' });
  });
});

describe('decideRollout: properties over any results', () => {
  const arbResults = fc.record({
    nc: fc.integer({ min: 0, max: 20_000 }),
    nt: fc.integer({ min: 0, max: 20_000 }),
    ec: fc.double({ min: 0, max: 0.5, noNaN: true }),
    et: fc.double({ min: 0, max: 0.5, noNaN: true }),
    lc: fc.double({ min: 1, max: 500, noNaN: true }),
    lt: fc.double({ min: 1, max: 500, noNaN: true }),
    srm: fc.boolean(),
    step: fc.integer({ min: 0, max: 2 }),
    minutesIn: fc.integer({ min: 0, max: 200 }),
    quiet: fc.integer({ min: 0, max: 59 }),
  });

  it('never advances or promotes on SRM or harm, never acts below the minimum, and ramps only to the next step', () => {
    fc.assert(
      fc.property(arbResults, (a) => {
        const r = results({ n: [a.nc, a.nt], errors: [a.ec, a.et], latency: [a.lc, a.lt], srm: a.srm, primary: { diff: 0.01, p: 0.001 } });
        const state = { step: a.step, stepStartedAt: NOW - a.minutesIn * MIN, lastTrafficAt: NOW - a.quiet * MIN };
        const d = decideRollout(plan, r, state, NOW, { primaryMetric: 'ctr' });
        const harmed = evaluateGuardrails(plan, r).some((g) => g.verdict === 'harmed');
        if (Math.min(a.nc, a.nt) < plan.minUnitsForDecision) expect(d.action).toBe('hold');
        if (a.srm || harmed) expect(['ramp', 'promote']).not.toContain(d.action);
        if (harmed && Math.min(a.nc, a.nt) >= plan.minUnitsForDecision) expect(d.action).toBe('rollback');
        if (d.action === 'ramp') {
          expect(d.toStep).toBe(a.step + 1);
          expect(d.weights).toEqual(plan.steps[a.step + 1]!.weights);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('the one-sided always-valid bound', () => {
  it('lies below the estimate, closer as the variance shrinks', () => {
    const wide = alwaysValidLowerBound(1, 1, 0.5, 0.025);
    const narrow = alwaysValidLowerBound(1, 0.01, 0.5, 0.025);
    expect(wide).toBeLessThan(narrow);
    expect(narrow).toBeLessThan(1);
  });

  it('holds at every look: under no effect, continuous peeking crosses zero in at most `level` of runs', () => {
    const rng = createRng(7);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    const level = 0.05;
    const runs = 400;
    let crossed = 0;
    for (let r = 0; r < runs; r++) {
      let sum = 0;
      for (let n = 1; n <= 500; n++) {
        sum += gauss();
        if (n >= 10 && alwaysValidLowerBound(sum / n, 1 / n, 0.04, level) > 0) {
          crossed++;
          break;
        }
      }
    }
    expect(crossed / runs).toBeLessThanOrEqual(level);
  });
});

describe('the seeded rollout simulation', () => {
  const healthy = { errorRate: 0.01, latencyMedianMs: 50 };
  it('walks an A/A rollout through every step, and rolls back a model failing 20% of requests', () => {
    for (let seed = 1; seed <= 5; seed++) {
      expect(simulateRollout(plan, { unitsPerMinute: 100, control: healthy, treatment: healthy, horizonMinutes: 300 }, seed)).toMatchObject({ end: 'completed', stepsDone: 2 });
      const bad = simulateRollout(plan, { unitsPerMinute: 6000, control: healthy, treatment: { ...healthy, errorRate: 0.2 }, horizonMinutes: 30 }, seed);
      expect(bad).toMatchObject({ end: 'rollback', reason: 'harm', stepsDone: 0 });
      expect(bad.treatmentUnits).toBeLessThanOrEqual(300);
    }
  });
});
