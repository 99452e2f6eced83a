import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Experiment, ExperimentDefinition, RolloutPlan, defaultRolloutPlan, hundredths, rolloutEditIssues, rolloutPlanIssues } from '../src/index.ts';

const KEYS = ['control', 'treatment'];

describe('defaultRolloutPlan', () => {
  it('is SPEC §10 default plan for one treatment', () => {
    const plan = defaultRolloutPlan(KEYS);
    expect(plan).toEqual({
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
    });
  });

  it('splits the treatment share evenly in hundredths, the remainder to the first treatment', () => {
    const plan = defaultRolloutPlan(['c', 'a', 'b', 'd']);
    expect(plan.steps[0]!.weights).toEqual({ c: 95, a: 1.68, b: 1.66, d: 1.66 });
    expect(plan.steps[2]!.weights).toEqual({ c: 50, a: 16.68, b: 16.66, d: 16.66 });
  });

  it('has no plan issues for any number of variants (weights sum to 100, every variant named, treatments never go down)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 20 }), (n) => {
        const keys = Array.from({ length: n }, (_, i) => `v${i}`);
        const plan = defaultRolloutPlan(keys);
        expect(rolloutPlanIssues(plan, keys)).toEqual([]);
        for (const step of plan.steps) {
          expect(Object.keys(step.weights)).toEqual(keys);
          expect(Object.values(step.weights).reduce((s, w) => s + hundredths(w), 0)).toBe(10_000);
        }
      }),
    );
  });

  it('needs a control and a treatment', () => {
    expect(() => defaultRolloutPlan(['control'])).toThrow(RangeError);
  });
});

describe('rolloutPlanIssues', () => {
  const plan = (weights: Record<string, number>[]) =>
    RolloutPlan.parse({ steps: weights.map((w) => ({ weights: w, minMinutes: 1, minUnits: 1 })), guardrails: [] });

  it('names the variant a step leaves out, an unknown variant and a sum other than 100', () => {
    expect(rolloutPlanIssues(plan([{ control: 100 }]), KEYS).map((i) => i.path)).toEqual([['steps', 0, 'weights', 'treatment']]);
    expect(rolloutPlanIssues(plan([{ control: 90, treatment: 5, other: 5 }]), KEYS).map((i) => i.path)).toEqual([['steps', 0, 'weights', 'other']]);
    const sum = rolloutPlanIssues(plan([{ control: 90, treatment: 5 }]), KEYS);
    expect(sum.map((i) => i.path)).toEqual([['steps', 0, 'weights']]);
    expect(sum[0]!.message).toContain('got 95');
  });

  it('refuses a treatment whose weight goes down from one step to the next', () => {
    const issues = rolloutPlanIssues(plan([{ control: 50, treatment: 50 }, { control: 75, treatment: 25 }]), KEYS);
    expect(issues.map((i) => i.path)).toEqual([['steps', 1, 'weights', 'treatment']]);
  });

  it('refuses a guardrail listed twice', () => {
    const p = RolloutPlan.parse({ ...defaultRolloutPlan(KEYS), guardrails: [{ metric: 'error_rate', harm: 'increase', margin: 0 }, { metric: 'error_rate', harm: 'decrease', margin: 0 }] });
    expect(rolloutPlanIssues(p, KEYS).map((i) => i.path)).toEqual([['guardrails', 1, 'metric']]);
  });

  it('accepts every plan whose treatment weights never go down, and refuses every one where one does', () => {
    const steps = fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(steps, (raw) => {
        const up = [...raw].sort((a, b) => a - b);
        const weights = (h: number) => ({ control: (10_000 - h) / 100, treatment: h / 100 });
        expect(rolloutPlanIssues(plan(up.map(weights)), KEYS)).toEqual([]);
        const down = up.findIndex((h, i) => i > 0 && h > up[i - 1]!);
        if (down > 0) {
          const swapped = [...up];
          [swapped[down - 1], swapped[down]] = [swapped[down]!, swapped[down - 1]!];
          expect(rolloutPlanIssues(plan(swapped.map(weights)), KEYS).map((i) => i.path)).toContainEqual(['steps', down, 'weights', 'treatment']);
        }
      }),
    );
  });
});

describe('rolloutEditIssues', () => {
  const before = defaultRolloutPlan(KEYS);

  it('keeps the weights of the steps done and the current one', () => {
    const after = structuredClone(before);
    after.steps[0]!.weights = { control: 90, treatment: 10 };
    expect(rolloutEditIssues(before, after, 1, KEYS).map((i) => i.path)).toEqual([['steps', 0, 'weights']]);
    expect(rolloutEditIssues(before, after, 0, KEYS).map((i) => i.path)).toEqual([['steps', 0, 'weights']]);
  });

  it('lets later steps, minutes, units and guardrails change', () => {
    const after = structuredClone(before);
    after.steps[1]!.minMinutes = 5;
    after.steps[2]!.weights = { control: 40, treatment: 60 };
    after.guardrails = [];
    expect(rolloutEditIssues(before, after, 1, KEYS)).toEqual([]);
  });

  it('refuses removing the current step, and a later step below the current weights', () => {
    const shorter = { ...before, steps: before.steps.slice(0, 1) };
    expect(rolloutEditIssues(before, shorter, 1, KEYS).map((i) => i.path)).toEqual([['steps', 1]]);
    const after = structuredClone(before);
    after.steps[2]!.weights = { control: 80, treatment: 20 };
    expect(rolloutEditIssues(before, after, 1, KEYS).map((i) => i.path)).toEqual([['steps', 2, 'weights', 'treatment']]);
  });
});

describe('the rollout on an experiment', () => {
  const definition = { key: 'exp', route: 'recommend', variants: [{ key: 'control', weight: 50 }, { key: 'treatment', weight: 50 }] };

  it('is accepted on the definition with its defaults filled in', () => {
    const parsed = ExperimentDefinition.parse({ ...definition, rollout: { steps: defaultRolloutPlan(KEYS).steps, guardrails: [] } });
    expect(parsed.rollout?.onHarm).toBe('rollback');
    expect(parsed.rollout?.minUnitsForDecision).toBe(100);
  });

  it('rejects an unknown field and names where', () => {
    const r = ExperimentDefinition.safeParse({ ...definition, rollout: { ...defaultRolloutPlan(KEYS), speed: 'fast' } });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(['rollout']);
  });

  it('stores the rollout state with the experiment', () => {
    const stored = Experiment.parse({
      ...definition,
      layer: 'exp',
      allocation: { start: 0, end: 10_000 },
      trafficPercent: 100,
      status: 'running',
      version: 1,
      createdAt: '2026-01-01T00:00:00Z',
      updatedAt: '2026-01-01T00:00:00Z',
      rollout: defaultRolloutPlan(KEYS),
      rolloutState: { step: 0, stepStartedAt: '2026-01-01T00:00:00Z' },
    });
    expect(stored.rolloutState).toEqual({ step: 0, stepStartedAt: '2026-01-01T00:00:00Z', autopilot: 'active' });
  });
});
