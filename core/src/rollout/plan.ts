import { z } from 'zod';
import { Key, Weight, hundredths } from '../keys.ts';

/** One step of a guarded rollout (SPEC §10): its weights, and how long and how many units it needs before the next. */
export const RolloutStep = z.strictObject({
  weights: z.record(Key, Weight),
  minMinutes: z.number().min(0).max(525600),
  minUnits: z.number().int().min(0),
});
export type RolloutStep = z.infer<typeof RolloutStep>;

/** A metric tested against control all the time: harmed when its one-sided always-valid bound crosses the margin. */
export const RolloutGuardrail = z.strictObject({
  metric: Key,
  harm: z.enum(['increase', 'decrease']),
  margin: z.number().min(0).max(10),
});
export type RolloutGuardrail = z.infer<typeof RolloutGuardrail>;

export const RolloutPlan = z.strictObject({
  steps: z.array(RolloutStep).min(1).max(20),
  guardrails: z.array(RolloutGuardrail).max(20),
  alpha: z.number().gt(0).lt(1).default(0.05),
  minUnitsForDecision: z.number().int().min(1).default(100),
  onHarm: z.enum(['rollback', 'pause']).default('rollback'),
  onSrm: z.enum(['pause', 'rollback']).default('pause'),
  onNoTraffic: z
    .strictObject({ afterMinutes: z.number().gt(0), action: z.enum(['pause', 'rollback', 'hold']) })
    .default({ afterMinutes: 60, action: 'pause' }),
  whenDone: z.enum(['promote-if-primary-wins', 'promote', 'hold']).default('promote-if-primary-wins'),
});
export type RolloutPlan = z.infer<typeof RolloutPlan>;
export type RolloutPlanInput = z.input<typeof RolloutPlan>;

export const RolloutState = z.strictObject({
  /** Index of the current step in `plan.steps`. */
  step: z.number().int().min(0),
  /** ISO time the current step's weights took effect. */
  stepStartedAt: z.string(),
  /** 'paused': a person took over; the autopilot only reports. */
  autopilot: z.enum(['active', 'paused']).default('active'),
});
export type RolloutState = z.infer<typeof RolloutState>;

export interface PlanIssue {
  path: (string | number)[];
  message: string;
}

/** SPEC §10's default: the treatments' share of each step, with its minimum minutes and units. */
const DEFAULT_STEPS = [
  { treatmentPercent: 5, minMinutes: 10, minUnits: 200 },
  { treatmentPercent: 25, minMinutes: 30, minUnits: 1000 },
  { treatmentPercent: 50, minMinutes: 60, minUnits: 5000 },
] as const;

/**
 * SPEC §10's default plan for these variants (first = control); with several treatments the
 * treatment share of each step is split evenly (hundredths, remainder to the first treatment).
 */
export function defaultRolloutPlan(variantKeys: readonly string[]): RolloutPlan {
  const [control, ...treatments] = variantKeys;
  if (control === undefined || treatments.length === 0) throw new RangeError('a rollout needs a control and at least one treatment');
  const steps = DEFAULT_STEPS.map((s) => {
    const share = s.treatmentPercent * 100;
    const each = Math.floor(share / treatments.length);
    const weights: Record<string, number> = { [control]: (10_000 - share) / 100 };
    treatments.forEach((t, i) => {
      weights[t] = (each + (i === 0 ? share - each * treatments.length : 0)) / 100;
    });
    return { weights, minMinutes: s.minMinutes, minUnits: s.minUnits };
  });
  return RolloutPlan.parse({
    steps,
    guardrails: [
      { metric: 'error_rate', harm: 'increase', margin: 0 },
      { metric: 'latency_ms', harm: 'increase', margin: 0.05 },
    ],
  });
}

/**
 * Problems of a plan against an experiment's variants: every step names every variant's weight
 * and sums to 100; treatment weights never decrease from step to step, so a ramp never moves a
 * unit from a treatment back to control (SPEC §3). Returns [] when fine.
 */
export function rolloutPlanIssues(plan: RolloutPlan, variantKeys: readonly string[]): PlanIssue[] {
  const issues: PlanIssue[] = [];
  const known = new Set(variantKeys);
  const treatments = variantKeys.slice(1);
  plan.steps.forEach((step, i) => {
    for (const key of variantKeys) {
      if (step.weights[key] === undefined) issues.push({ path: ['steps', i, 'weights', key], message: `step ${i + 1} must name the weight of variant "${key}"` });
    }
    for (const key of Object.keys(step.weights)) {
      if (!known.has(key)) issues.push({ path: ['steps', i, 'weights', key], message: `unknown variant "${key}"` });
    }
    const total = Object.values(step.weights).reduce((sum, w) => sum + hundredths(w), 0);
    if (total !== 10_000) issues.push({ path: ['steps', i, 'weights'], message: `step ${i + 1}'s weights must sum to exactly 100 (got ${total / 100})` });
    const previous = plan.steps[i - 1];
    if (previous === undefined) return;
    for (const key of treatments) {
      const before = previous.weights[key];
      const now = step.weights[key];
      if (before !== undefined && now !== undefined && hundredths(now) < hundredths(before)) {
        issues.push({
          path: ['steps', i, 'weights', key],
          message: `treatment "${key}" may not go down from ${before} to ${now}: a ramp would move its units back to control`,
        });
      }
    }
  });
  const seen = new Set<string>();
  plan.guardrails.forEach((g, i) => {
    if (seen.has(g.metric)) issues.push({ path: ['guardrails', i, 'metric'], message: `guardrail "${g.metric}" is listed twice` });
    seen.add(g.metric);
  });
  return issues;
}

function sameWeights(a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => a[k] !== undefined && b[k] !== undefined && hundredths(a[k]) === hundredths(b[k]));
}

/**
 * Problems of editing a running rollout's plan at step `step`: the steps done and the current one
 * (0..step) keep their weights, since units were assigned under them; later steps as
 * `rolloutPlanIssues` (which also keeps treatments from going down across the current step).
 */
export function rolloutEditIssues(before: RolloutPlan, after: RolloutPlan, step: number, variantKeys: readonly string[]): PlanIssue[] {
  const issues: PlanIssue[] = [];
  for (let i = 0; i <= step && i < before.steps.length; i++) {
    const was = before.steps[i]!;
    const now = after.steps[i];
    if (now === undefined) issues.push({ path: ['steps', i], message: `step ${i + 1} has run or is running and cannot be removed` });
    else if (!sameWeights(was.weights, now.weights)) {
      issues.push({ path: ['steps', i, 'weights'], message: `step ${i + 1} has run or is running: its weights cannot change` });
    }
  }
  return [...issues, ...rolloutPlanIssues(after, variantKeys)];
}
