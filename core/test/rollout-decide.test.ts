import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  RolloutPlan,
  decideRollout,
  defaultRolloutPlan,
  evaluateGuardrails,
  normalCdf,
  oneSidedBound,
  sequentialPValue,
  type RolloutClock,
  type RolloutPlanInput,
  type RolloutResults,
} from '../src/index.ts';

const MIN = 60_000;
const PLAN = defaultRolloutPlan(['control', 'treatment']);

interface Arm {
  units: number;
  errorRate?: number;
  latency?: { mean: number; variance: number };
}

/** Results as the aggregator publishes them, from per-arm figures. */
function results(control: Arm, treatment: Arm, options: { srm?: boolean; primary?: { diff: number; p: number } } = {}): RolloutResults {
  const arms = [
    ['control', control],
    ['treatment', treatment],
  ] as const;
  const metrics: RolloutResults['metrics'][number][] = [];
  if (control.errorRate !== undefined && treatment.errorRate !== undefined) {
    metrics.push({
      metric: 'error_rate',
      type: 'proportion',
      variants: arms.map(([key, a]) => ({ key, units: a.units, mean: a.errorRate!, variance: a.errorRate! * (1 - a.errorRate!) })),
      comparisons: [],
    });
  }
  if (control.latency && treatment.latency) {
    metrics.push({ metric: 'latency_ms', type: 'mean', variants: arms.map(([key, a]) => ({ key, units: a.units, ...a.latency! })), comparisons: [] });
  }
  if (options.primary) {
    metrics.push({
      metric: 'conversion',
      type: 'proportion',
      variants: [],
      comparisons: [{ variant: 'treatment', baseline: 'control', diff: options.primary.diff, sequentialPValue: options.primary.p }],
    });
  }
  return {
    variants: arms.map(([key, a]) => ({ key, units: a.units })),
    srm: { pValue: options.srm ? 1e-6 : 0.5, mismatch: options.srm ?? false },
    metrics,
  };
}

const healthy = (units: number): Arm => ({ units, errorRate: 0.01, latency: { mean: 100, variance: 2500 } });
const clock = (step: number, minutesIntoStep: number): { state: RolloutClock; now: number } => ({
  state: { step, stepStartedAt: 0, lastTrafficAt: minutesIntoStep * MIN },
  now: minutesIntoStep * MIN,
});
const plan = (over: Partial<RolloutPlanInput>) => RolloutPlan.parse({ ...PLAN, ...over });

describe('decideRollout: every action and every hold reason (SPEC §10)', () => {
  it('holds while a variant has fewer than minUnitsForDecision units, even with a glaring harm', () => {
    const { state, now } = clock(0, 30);
    const d = decideRollout(PLAN, results(healthy(5000), { ...healthy(99), errorRate: 0.9 }), state, now);
    expect(d).toMatchObject({ action: 'hold', reason: 'min-units-for-decision' });
    expect(d.evidence.guardrails.every((g) => g.verdict === 'insufficient')).toBe(true);
  });

  it('rolls back on harm mid-step, before the step minimum', () => {
    const { state, now } = clock(0, 2);
    const d = decideRollout(PLAN, results(healthy(5000), { ...healthy(300), errorRate: 0.2 }), state, now);
    expect(d).toMatchObject({ action: 'rollback', reason: 'harm' });
    const error = d.evidence.guardrails.find((g) => g.metric === 'error_rate')!;
    expect(error).toMatchObject({ verdict: 'harmed', relative: false, level: PLAN.alpha / 2, units: { control: 5000, treatment: 300 } });
    expect(error.bound!).toBeGreaterThan(0);
    expect(d.message).toContain('error_rate');
  });

  it('pauses on harm when the plan says so', () => {
    const { state, now } = clock(0, 2);
    expect(decideRollout(plan({ onHarm: 'pause' }), results(healthy(5000), { ...healthy(300), errorRate: 0.2 }), state, now).action).toBe('pause');
  });

  it('tests a positive margin on the relative difference: +3% latency is not harm, +100% is', () => {
    const { state, now } = clock(0, 2);
    const slightly = decideRollout(PLAN, results(healthy(100_000), { ...healthy(100_000), latency: { mean: 103, variance: 2500 } }), state, now);
    const latency = slightly.evidence.guardrails.find((g) => g.metric === 'latency_ms')!;
    expect(latency).toMatchObject({ relative: true, verdict: 'ok' });
    expect(latency.estimate).toBeCloseTo(0.03, 12);
    expect(latency.bound!).toBeGreaterThan(0); // far above 0, still below the 5% margin
    const doubled = decideRollout(PLAN, results(healthy(5000), { ...healthy(300), latency: { mean: 200, variance: 10_000 } }), state, now);
    expect(doubled).toMatchObject({ action: 'rollback', reason: 'harm' });
  });

  it('tests harm "decrease" with the upper bound below −margin', () => {
    const p = plan({ guardrails: [{ metric: 'error_rate', harm: 'decrease', margin: 0 }] });
    const { state, now } = clock(0, 2);
    const d = decideRollout(p, results({ ...healthy(5000), errorRate: 0.3 }, { ...healthy(500), errorRate: 0.1 }), state, now);
    expect(d).toMatchObject({ action: 'rollback', reason: 'harm' });
    expect(d.evidence.guardrails[0]!.bound!).toBeLessThan(0);
    const up = decideRollout(p, results({ ...healthy(5000), errorRate: 0.1 }, { ...healthy(500), errorRate: 0.3 }), state, now);
    expect(up.evidence.guardrails[0]!.verdict).toBe('ok');
  });

  it('acts on SRM with onSrm', () => {
    const { state, now } = clock(0, 20);
    expect(decideRollout(PLAN, results(healthy(5000), healthy(300), { srm: true }), state, now)).toMatchObject({ action: 'pause', reason: 'srm' });
    expect(decideRollout(plan({ onSrm: 'rollback' }), results(healthy(5000), healthy(300), { srm: true }), state, now).action).toBe('rollback');
  });

  it('acts on no new units for onNoTraffic.afterMinutes', () => {
    const state = { step: 0, stepStartedAt: 0, lastTrafficAt: 10 * MIN };
    expect(decideRollout(PLAN, results(healthy(5000), healthy(300)), state, 69 * MIN).reason).not.toBe('no-traffic');
    expect(decideRollout(PLAN, results(healthy(5000), healthy(300)), state, 70 * MIN)).toMatchObject({ action: 'pause', reason: 'no-traffic' });
    const hold = plan({ onNoTraffic: { afterMinutes: 60, action: 'hold' } });
    expect(decideRollout(hold, results(healthy(5000), healthy(300)), state, 70 * MIN)).toMatchObject({ action: 'hold', reason: 'no-traffic' });
  });

  it('holds until the step has lasted minMinutes, then until every variant has minUnits', () => {
    const early = clock(0, 9.9);
    expect(decideRollout(PLAN, results(healthy(5000), healthy(300)), early.state, early.now)).toMatchObject({ action: 'hold', reason: 'step-min-minutes' });
    const late = clock(0, 10);
    expect(decideRollout(PLAN, results(healthy(5000), healthy(199)), late.state, late.now)).toMatchObject({ action: 'hold', reason: 'step-min-units' });
  });

  it('holds while a guardrail metric is missing from the results, but a missing one does not stop a rollback', () => {
    const { state, now } = clock(0, 20);
    const noLatency = (a: Arm): Arm => ({ units: a.units, ...(a.errorRate === undefined ? {} : { errorRate: a.errorRate }) });
    const d = decideRollout(PLAN, results(noLatency(healthy(5000)), noLatency(healthy(300))), state, now);
    expect(d).toMatchObject({ action: 'hold', reason: 'guardrails-pending' });
    expect(d.evidence.guardrails.map((g) => g.verdict)).toEqual(['ok', 'missing']);
    const bad = decideRollout(PLAN, results(noLatency(healthy(5000)), { units: 300, errorRate: 0.2 }), state, now);
    expect(bad).toMatchObject({ action: 'rollback', reason: 'harm' });
  });

  it('ramps to the next step with its weights', () => {
    const { state, now } = clock(0, 10);
    expect(decideRollout(PLAN, results(healthy(5000), healthy(300)), state, now)).toMatchObject({
      action: 'ramp',
      reason: 'advance',
      toStep: 1,
      weights: { control: 75, treatment: 25 },
    });
  });

  it('after the last step: promotes when the primary metric wins, else holds', () => {
    const { state, now } = clock(2, 60);
    const done = (p: RolloutPlan, primary?: { diff: number; p: number }, primaryMetric: string | undefined = 'conversion') =>
      decideRollout(p, results(healthy(6000), healthy(6000), primary ? { primary } : {}), state, now, primaryMetric === undefined ? {} : { primaryMetric });
    const wins = done(PLAN, { diff: 0.01, p: 0.001 });
    expect(wins).toMatchObject({ action: 'promote', reason: 'done-promote', variant: 'treatment' });
    expect(wins.evidence.primary).toEqual({ metric: 'conversion', variant: 'treatment', diff: 0.01, sequentialPValue: 0.001 });
    expect(done(PLAN, { diff: -0.01, p: 0.001 })).toMatchObject({ action: 'hold', reason: 'done-primary-not-winning' });
    expect(done(PLAN, { diff: 0.01, p: 0.2 })).toMatchObject({ action: 'hold', reason: 'done-primary-not-winning' });
    expect(done(PLAN, undefined, undefined)).toMatchObject({ action: 'hold', reason: 'done-no-primary' });
    expect(done(plan({ whenDone: 'promote' }))).toMatchObject({ action: 'promote', reason: 'done-promote', variant: 'treatment' });
    expect(done(plan({ whenDone: 'hold' }))).toMatchObject({ action: 'hold', reason: 'done-hold' });
  });
});

describe('the one-sided always-valid bound', () => {
  it('sits where the half-normal mixture likelihood ratio reaches 1/level: 2Φ(z) times the two-sided mSPRT ratio', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1, max: 1, noNaN: true }),
        fc.double({ min: 1e-8, max: 1, noNaN: true }),
        fc.double({ min: 1e-6, max: 10, noNaN: true }),
        fc.double({ min: 1e-4, max: 0.5, noNaN: true }),
        (estimate, v, tau2, level) => {
          const lower = oneSidedBound(estimate, v, tau2, level, 'lower');
          const x = estimate - lower;
          const z = (x * Math.sqrt(tau2)) / Math.sqrt(v * (v + tau2));
          const twoSidedLambda = 1 / sequentialPValue(x, v, tau2);
          expect(Math.log(2 * normalCdf(z) * twoSidedLambda)).toBeCloseTo(-Math.log(level), 6);
          expect(oneSidedBound(estimate, v, tau2, level, 'upper') - estimate).toBeCloseTo(x, 12);
        },
      ),
    );
  });

  it('is narrower than the two-sided confidence sequence at the same level', () => {
    const [v, tau2, level] = [1e-4, 4e-4, 0.025];
    const x = estimateAtTwoSidedEdge(v, tau2, level);
    expect(0 - oneSidedBound(0, v, tau2, level, 'lower')).toBeLessThan(x);
  });
});

/** Half-width of the two-sided mSPRT confidence sequence: where its p-value equals the level. */
function estimateAtTwoSidedEdge(v: number, tau2: number, level: number): number {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (sequentialPValue(mid, v, tau2) > level) lo = mid;
    else hi = mid;
  }
  return lo;
}

describe('decideRollout: properties', () => {
  const arm = fc.record({
    units: fc.integer({ min: 0, max: 20_000 }),
    errorRate: fc.double({ min: 0, max: 1, noNaN: true }),
    latency: fc.record({ mean: fc.double({ min: 1, max: 1000, noNaN: true }), variance: fc.double({ min: 0, max: 1e5, noNaN: true }) }),
  });
  const input = fc.record({
    control: arm,
    treatment: arm,
    srm: fc.boolean(),
    step: fc.integer({ min: 0, max: 2 }),
    minutes: fc.double({ min: 0, max: 200, noNaN: true }),
    quiet: fc.double({ min: 0, max: 200, noNaN: true }),
    onHarm: fc.constantFrom('rollback' as const, 'pause' as const),
    onSrm: fc.constantFrom('rollback' as const, 'pause' as const),
    whenDone: fc.constantFrom('promote' as const, 'hold' as const, 'promote-if-primary-wins' as const),
    minUnitsForDecision: fc.integer({ min: 1, max: 5000 }),
    primary: fc.record({ diff: fc.double({ min: -1, max: 1, noNaN: true }), p: fc.double({ min: 0, max: 1, noNaN: true }) }),
  });

  it('never advances or promotes on SRM or harm, never acts below minUnitsForDecision, ramps only to the next step', () => {
    fc.assert(
      fc.property(input, (i) => {
        const p = plan({ onHarm: i.onHarm, onSrm: i.onSrm, whenDone: i.whenDone, minUnitsForDecision: i.minUnitsForDecision });
        const r = results(i.control, i.treatment, { srm: i.srm, primary: i.primary });
        const now = (i.minutes + i.quiet) * MIN;
        const d = decideRollout(p, r, { step: i.step, stepStartedAt: 0, lastTrafficAt: i.minutes * MIN }, now, { primaryMetric: 'conversion' });
        const harmed = evaluateGuardrails(p, r).some((g) => g.verdict === 'harmed');
        if (i.srm || harmed) expect(['ramp', 'promote']).not.toContain(d.action);
        if (Math.min(i.control.units, i.treatment.units) < i.minUnitsForDecision) expect(d).toMatchObject({ action: 'hold', reason: 'min-units-for-decision' });
        if (harmed && Math.min(i.control.units, i.treatment.units) >= i.minUnitsForDecision) expect(d).toMatchObject({ action: i.onHarm, reason: 'harm' });
        if (d.action === 'ramp') {
          expect(d.toStep).toBe(i.step + 1);
          expect(d.weights).toEqual(p.steps[i.step + 1]!.weights);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
