import { hundredths, type RolloutPlan, type RolloutStep } from '../schemas.ts';

export interface PlanIssue {
  path: (string | number)[];
  message: string;
}

/** SPEC §10's default steps as treatment shares: 5% → 25% → 50%. */
const DEFAULT_STEPS = [
  { treatment: 5, minMinutes: 10, minUnits: 200 },
  { treatment: 25, minMinutes: 30, minUnits: 1000 },
  { treatment: 50, minMinutes: 60, minUnits: 5000 },
];

/**
 * SPEC §10's default plan for these variants (the first is control). With several treatments,
 * each step's treatment share is split evenly in hundredths, the remainder to the first.
 */
export function defaultRolloutPlan(variantKeys: readonly string[]): RolloutPlan {
  const [control, ...treatments] = variantKeys;
  if (control === undefined || treatments.length === 0) throw new RangeError('a rollout needs a control and at least one treatment');
  const steps: RolloutStep[] = DEFAULT_STEPS.map(({ treatment, minMinutes, minUnits }) => {
    const share = treatment * 100;
    const each = Math.floor(share / treatments.length);
    const weights: Record<string, number> = { [control]: (10_000 - share) / 100 };
    treatments.forEach((t, i) => (weights[t] = (each + (i === 0 ? share - each * treatments.length : 0)) / 100));
    return { weights, minMinutes, minUnits };
  });
  return {
    steps,
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
}

/**
 * What is wrong with a plan for an experiment with these variants: every step names every
 * variant's weight and sums to exactly 100, and no treatment's weight ever falls from one step
 * to the next, so advancing never moves a unit from treatment back to control (SPEC §3, §10).
 */
export function rolloutPlanIssues(plan: Pick<RolloutPlan, 'steps'>, variantKeys: readonly string[]): PlanIssue[] {
  const issues: PlanIssue[] = [];
  const known = new Set(variantKeys);
  plan.steps.forEach((step, i) => {
    const path = ['rollout', 'steps', i, 'weights'];
    for (const key of Object.keys(step.weights)) if (!known.has(key)) issues.push({ path: [...path, key], message: `unknown variant "${key}"` });
    for (const key of variantKeys) if (step.weights[key] === undefined) issues.push({ path: [...path, key], message: `every step names every variant's weight; "${key}" is missing` });
    const total = Object.values(step.weights).reduce((sum, w) => sum + hundredths(w), 0);
    if (total !== 10_000) issues.push({ path, message: `weights must sum to exactly 100 (got ${total / 100})` });
    const before = plan.steps[i - 1];
    if (!before) return;
    for (const key of variantKeys.slice(1)) {
      const from = before.weights[key];
      const to = step.weights[key];
      if (from !== undefined && to !== undefined && hundredths(to) < hundredths(from)) {
        issues.push({ path: [...path, key], message: `a treatment's weight never falls from one step to the next (${from} → ${to}): units would move back to control` });
      }
    }
  });
  return issues;
}

/**
 * What is wrong with editing a running rollout's plan at step `step`: the steps done and the
 * current one keep their weights (units were assigned under them), and the plan as a whole must
 * still be valid.
 */
export function rolloutEditIssues(before: Pick<RolloutPlan, 'steps'>, after: Pick<RolloutPlan, 'steps'>, step: number, variantKeys: readonly string[]): PlanIssue[] {
  const issues = rolloutPlanIssues(after, variantKeys);
  for (let i = 0; i <= step && i < before.steps.length; i++) {
    const was = before.steps[i]!.weights;
    const now = after.steps[i]?.weights;
    const same = now !== undefined && variantKeys.every((k) => was[k] !== undefined && now[k] !== undefined && hundredths(was[k]) === hundredths(now[k]));
    if (!same) issues.push({ path: ['rollout', 'steps', i, 'weights'], message: `step ${i + 1} has ${i === step ? 'started' : 'passed'}: its weights cannot change` });
  }
  return issues;
}
