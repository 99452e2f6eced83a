import { oneSidedBound, GUARDRAIL_MIXING_SD } from '../stats/one-sided-bound.ts';
import type { RolloutGuardrail, RolloutPlan } from './plan.ts';

/**
 * The release autopilot's decision (SPEC §10), pure: plan, results, the rollout's clock and the
 * time in; one action with its reason and evidence out. The caller applies it.
 */

/**
 * The part of the aggregator's SPEC §4 results the autopilot reads (the JSON of
 * GET /v1/results/:experiment satisfies it: figures it cannot compute are null).
 */
export interface RolloutResults {
  variants: readonly { key: string; units: number }[];
  srm: { pValue: number | null; mismatch: boolean };
  metrics: readonly {
    metric: string;
    type: string;
    variants: readonly { key: string; units: number; mean: number | null; variance: number | null }[];
    comparisons: readonly { variant: string; baseline: string; diff: number | null; sequentialPValue: number | null }[];
  }[];
}

export interface RolloutClock {
  step: number;
  /** ms: when the current step's weights took effect. */
  stepStartedAt: number;
  /** ms: when the unit count last grew. */
  lastTrafficAt: number;
}

export type RolloutAction = 'hold' | 'ramp' | 'promote' | 'rollback' | 'pause';

export interface GuardrailEvidence {
  metric: string;
  variant: string;
  baseline: string;
  harm: 'increase' | 'decrease';
  margin: number;
  /** margin > 0: relative difference (treatment / control − 1). */
  relative: boolean;
  /** The (absolute or relative) difference. */
  estimate: number | null;
  /** The one-sided always-valid bound in the harmful direction (lower for increase, upper for decrease). */
  bound: number | null;
  /** alpha / k. */
  level: number;
  units: { control: number; treatment: number };
  verdict: 'harmed' | 'ok' | 'insufficient' | 'missing';
}

export interface RolloutDecision {
  action: RolloutAction;
  /** A stable code (see `RolloutReason`). */
  reason: RolloutReason;
  /** One human sentence with the numbers. */
  message: string;
  toStep?: number;
  weights?: Record<string, number>;
  variant?: string;
  evidence: {
    units: Record<string, number>;
    guardrails: GuardrailEvidence[];
    srm: { pValue: number | null; mismatch: boolean };
    primary?: { metric: string; variant: string; diff: number; sequentialPValue: number };
  };
}

export type RolloutReason =
  | 'harm'
  | 'srm'
  | 'no-traffic'
  | 'advance'
  | 'done-promote'
  | 'done-primary-not-winning'
  | 'done-no-primary'
  | 'done-hold'
  | 'min-units-for-decision'
  | 'step-min-minutes'
  | 'step-min-units'
  | 'guardrails-pending';

type MetricResult = RolloutResults['metrics'][number];
type MetricVariant = MetricResult['variants'][number];

/** Per-unit variance: a proportion's p(1 − p) from a half-count-smoothed p, so an arm with no events still has spread. */
function unitVariance(type: string, arm: MetricVariant): number {
  if (type !== 'proportion') return arm.variance ?? NaN;
  const p = ((arm.mean ?? NaN) * arm.units + 0.5) / (arm.units + 1);
  return p * (1 - p);
}

/**
 * The difference of treatment against control, absolute or relative (delta method), with its
 * sampling variance and the mixing variance τ² = (φσ)² of the per-unit SD on the same scale.
 */
function difference(type: string, control: MetricVariant, treatment: MetricVariant, relative: boolean): { estimate: number; variance: number; tau2: number } | null {
  const mc = control.mean;
  const mt = treatment.mean;
  if (mc === null || mt === null) return null;
  const vc = unitVariance(type, control);
  const vt = unitVariance(type, treatment);
  if (!Number.isFinite(vc) || !Number.isFinite(vt)) return null;
  const phi2 = GUARDRAIL_MIXING_SD * GUARDRAIL_MIXING_SD;
  if (!relative) {
    return { estimate: mt - mc, variance: vt / treatment.units + vc / control.units, tau2: (phi2 * (vc + vt)) / 2 };
  }
  if (!(mc > 0)) return null;
  const r = mt / mc;
  // Var(mt/mc) ≈ vt/(nt mc²) + mt² vc/(nc mc⁴); the per-unit figures are the same without the n.
  const unitT = vt / (mc * mc);
  const unitC = (r * r * vc) / (mc * mc);
  return { estimate: r - 1, variance: unitT / treatment.units + unitC / control.units, tau2: (phi2 * (unitT + unitC)) / 2 };
}

function evaluate(plan: RolloutPlan, g: RolloutGuardrail, level: number, metric: MetricResult | undefined, control: string, variant: string): GuardrailEvidence {
  const relative = g.margin > 0;
  const c = metric?.variants.find((v) => v.key === control);
  const t = metric?.variants.find((v) => v.key === variant);
  const units = { control: c?.units ?? 0, treatment: t?.units ?? 0 };
  let verdict: GuardrailEvidence['verdict'] = 'insufficient';
  let estimate: number | null = null;
  let bound: number | null = null;
  if (metric === undefined) verdict = 'missing';
  else if (c !== undefined && t !== undefined && units.control >= plan.minUnitsForDecision && units.treatment >= plan.minUnitsForDecision) {
    const d = difference(metric.type, c, t, relative);
    if (d !== null) {
      const b = oneSidedBound(d.estimate, d.variance, d.tau2, level, g.harm === 'increase' ? 'lower' : 'upper');
      estimate = d.estimate;
      bound = Number.isFinite(b) ? b : null;
      verdict = (g.harm === 'increase' ? b > g.margin : b < -g.margin) ? 'harmed' : 'ok';
    }
  }
  return { metric: g.metric, variant, baseline: control, harm: g.harm, margin: g.margin, relative, estimate, bound, level, units, verdict };
}

/** Variant keys, control first: the results' order (the definition's), then any the plan names that have no data yet. */
function variantKeys(plan: RolloutPlan, results: RolloutResults): string[] {
  const keys = results.variants.map((v) => v.key);
  for (const k of Object.keys(plan.steps[0]?.weights ?? {})) if (!keys.includes(k)) keys.push(k);
  return keys;
}

/** Guardrail evidence alone (for GET /v1/experiments/:key/rollout and the dashboard): every guardrail against control for every treatment. */
export function evaluateGuardrails(plan: RolloutPlan, results: RolloutResults): GuardrailEvidence[] {
  const [control, ...treatments] = variantKeys(plan, results);
  if (control === undefined) return [];
  const level = plan.alpha / Math.max(1, plan.guardrails.length);
  return plan.guardrails.flatMap((g) => {
    const metric = results.metrics.find((m) => m.metric === g.metric);
    return treatments.map((t) => evaluate(plan, g, level, metric, control, t));
  });
}

const fmt = (x: number | null): string => (x === null ? 'n/a' : Number(x.toPrecision(3)).toString());

function describe(e: GuardrailEvidence): string {
  const what = e.relative ? 'relative difference' : 'difference';
  const side = e.harm === 'increase' ? 'lower' : 'upper';
  const limit = e.harm === 'increase' ? e.margin : -e.margin;
  return `${e.metric} of ${e.variant}: ${what} ${fmt(e.estimate)}, ${side} bound ${fmt(e.bound)} against ${fmt(limit)} at level ${fmt(e.level)} (${e.units.treatment} vs ${e.units.control} units)`;
}

/**
 * SPEC §10, in this order: (1) any variant under `minUnitsForDecision` → hold, never act;
 * (2) a harmed guardrail → `onHarm`, even mid-step; (3) SRM → `onSrm`; (4) no new units for
 * `onNoTraffic.afterMinutes` → its action; (5) the step's minutes, then its units, then every
 * guardrail evaluated → ramp to the next step, or after the last step `whenDone`.
 */
export function decideRollout(plan: RolloutPlan, results: RolloutResults, state: RolloutClock, now: number, options: { primaryMetric?: string } = {}): RolloutDecision {
  const keys = variantKeys(plan, results);
  const units: Record<string, number> = {};
  for (const k of keys) units[k] = results.variants.find((v) => v.key === k)?.units ?? 0;
  const guardrails = evaluateGuardrails(plan, results);
  const evidence: RolloutDecision['evidence'] = { units, guardrails, srm: results.srm };
  const decision = (action: RolloutAction, reason: RolloutReason, message: string, extra: Partial<RolloutDecision> = {}): RolloutDecision => ({
    action,
    reason,
    message,
    ...extra,
    evidence,
  });
  const unitList = keys.map((k) => `${k} ${units[k]}`).join(', ');

  // 1.
  const short = keys.filter((k) => units[k]! < plan.minUnitsForDecision);
  if (short.length > 0) {
    return decision('hold', 'min-units-for-decision', `Holding: ${short.join(', ')} below the ${plan.minUnitsForDecision} units needed for any decision (${unitList}).`);
  }
  // 2.
  const harmed = guardrails.filter((g) => g.verdict === 'harmed');
  if (harmed.length > 0) {
    return decision(plan.onHarm, 'harm', `Guardrail harmed, ${plan.onHarm}: ${harmed.map(describe).join('; ')}.`);
  }
  // 3.
  if (results.srm.mismatch) {
    return decision(plan.onSrm, 'srm', `Sample-ratio mismatch (p = ${fmt(results.srm.pValue)}), ${plan.onSrm}: ${unitList}.`);
  }
  // 4.
  const quietMinutes = (now - state.lastTrafficAt) / 60_000;
  if (quietMinutes >= plan.onNoTraffic.afterMinutes) {
    return decision(plan.onNoTraffic.action, 'no-traffic', `No new units for ${fmt(quietMinutes)} minutes (limit ${plan.onNoTraffic.afterMinutes}), ${plan.onNoTraffic.action}.`);
  }
  // 5.
  const index = Math.min(Math.max(0, state.step), plan.steps.length - 1);
  const step = plan.steps[index]!;
  const minutes = (now - state.stepStartedAt) / 60_000;
  if (minutes < step.minMinutes) {
    return decision('hold', 'step-min-minutes', `Step ${index + 1} has run ${fmt(minutes)} of its ${step.minMinutes} minutes.`);
  }
  const few = keys.filter((k) => units[k]! < step.minUnits);
  if (few.length > 0) {
    return decision('hold', 'step-min-units', `Step ${index + 1} needs ${step.minUnits} units in every variant: ${unitList}.`);
  }
  const pending = guardrails.filter((g) => g.verdict !== 'ok');
  if (pending.length > 0) {
    return decision('hold', 'guardrails-pending', `Waiting for guardrails to be evaluated: ${pending.map((g) => `${g.metric} of ${g.variant} (${g.verdict})`).join(', ')}.`);
  }
  const next = plan.steps[index + 1];
  if (next !== undefined) {
    return decision('ramp', 'advance', `Step ${index + 1} done after ${fmt(minutes)} minutes (${unitList}), every guardrail clear: ramping to step ${index + 2}.`, {
      toStep: index + 1,
      weights: { ...next.weights },
    });
  }
  return whenDone(plan, results, keys, options.primaryMetric, decision);
}

function whenDone(
  plan: RolloutPlan,
  results: RolloutResults,
  keys: readonly string[],
  primaryMetric: string | undefined,
  decision: (action: RolloutAction, reason: RolloutReason, message: string, extra?: Partial<RolloutDecision>) => RolloutDecision,
): RolloutDecision {
  const treatments = keys.slice(1);
  if (plan.whenDone === 'hold') return decision('hold', 'done-hold', 'Every step is done; the plan says hold for a person to decide.');
  if (plan.whenDone === 'promote' && treatments.length === 1) {
    return decision('promote', 'done-promote', `Every step is done: promoting ${treatments[0]}.`, { variant: treatments[0] });
  }
  const metric = primaryMetric === undefined ? undefined : results.metrics.find((m) => m.metric === primaryMetric);
  if (metric === undefined) {
    return decision('hold', 'done-no-primary', `Every step is done, but ${primaryMetric === undefined ? 'the experiment has no primary metric' : `the results have no primary metric ${primaryMetric}`} to choose a winner by.`);
  }
  // The winner: a positive difference with the smallest always-valid p below alpha.
  const winners = metric.comparisons
    .filter((c) => treatments.includes(c.variant) && c.diff !== null && c.diff > 0 && c.sequentialPValue !== null && c.sequentialPValue < plan.alpha)
    .sort((a, b) => a.sequentialPValue! - b.sequentialPValue!);
  const best = winners[0];
  if (best === undefined) {
    return decision('hold', 'done-primary-not-winning', `Every step is done, but no treatment beats control on ${metric.metric} at alpha ${plan.alpha}.`);
  }
  const primary = { metric: metric.metric, variant: best.variant, diff: best.diff!, sequentialPValue: best.sequentialPValue! };
  const d = decision('promote', 'done-promote', `Every step is done and ${best.variant} beats control on ${metric.metric} (difference ${fmt(best.diff)}, always-valid p ${fmt(best.sequentialPValue)}): promoting it.`, { variant: best.variant });
  return { ...d, evidence: { ...d.evidence, primary } };
}
