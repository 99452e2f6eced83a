import { z } from 'zod';
import type { RolloutGuardrail, RolloutPlan } from '../schemas.ts';
import { normalCdf, normalPdf } from '../stats/distributions.ts';

/**
 * The release autopilot's decision (SPEC §10): pure, from the plan, the aggregator's results, the
 * rollout's clock and the time. The controller applies what it returns through the releaser
 * actions; the simulation bench (core/bench/rollout.bench.ts) measures its error rates.
 */

/** The part of the aggregator's SPEC §4 results the autopilot reads (GET /v1/results/:experiment satisfies it). */
/** A number the aggregator could not compute is null in its JSON: NaN here, which no rule uses. */
const figure = z
  .number()
  .nullable()
  .transform((x) => x ?? NaN);

/**
 * The aggregator's answer as the autopilot reads it, checked: a malformed answer (another
 * version's shape, a proxy's error page) must make the autopilot hold, not act on `undefined`.
 */
export const RolloutResultsSchema = z.object({
  variants: z.array(z.object({ key: z.string(), units: z.number().int().min(0) })),
  srm: z.object({ pValue: figure, mismatch: z.boolean() }),
  metrics: z.array(
    z.object({
      metric: z.string(),
      type: z.string(),
      variants: z.array(z.object({ key: z.string(), units: z.number().int().min(0), mean: figure, variance: figure })),
      comparisons: z.array(z.object({ variant: z.string(), baseline: z.string(), diff: figure, sequentialPValue: figure })),
    }),
  ),
});

export interface RolloutResults {
  variants: readonly { key: string; units: number }[];
  srm: { pValue: number; mismatch: boolean };
  metrics: readonly {
    metric: string;
    type: string;
    variants: readonly { key: string; units: number; mean: number; variance: number }[];
    comparisons: readonly { variant: string; baseline: string; diff: number; sequentialPValue: number }[];
  }[];
}

export interface RolloutClock {
  /** Index of the current step in plan.steps. */
  step: number;
  /** When the current step's weights took effect (ms). */
  stepStartedAt: number;
  /** When the number of analysed units last grew (ms). */
  lastTrafficAt: number;
}

export type RolloutAction = 'hold' | 'ramp' | 'promote' | 'rollback' | 'pause';

export interface GuardrailEvidence {
  metric: string;
  variant: string;
  baseline: string;
  harm: 'increase' | 'decrease';
  margin: number;
  /** margin > 0: the difference is relative (treatment / control − 1). */
  relative: boolean;
  /** The difference, absolute or relative. */
  estimate: number | null;
  /** The one-sided always-valid bound on the harmful side: lower for `increase`, upper for `decrease`. */
  bound: number | null;
  /** α / k: the level each guardrail is tested at. */
  level: number;
  units: { control: number; treatment: number };
  verdict: 'harmed' | 'ok' | 'insufficient' | 'missing';
}

export interface RolloutDecision {
  action: RolloutAction;
  /** A stable code: harm, srm, no-traffic, advance, done-promote, done-primary-not-winning, done-hold, min-units-for-decision, step-min-minutes, step-min-units, guardrails-pending. */
  reason: string;
  /** One sentence with the numbers. */
  message: string;
  /** For `ramp`: the step it moves to and that step's weights. */
  toStep?: number;
  weights?: Record<string, number>;
  /** For `promote`. */
  variant?: string;
  evidence: {
    units: Record<string, number>;
    guardrails: GuardrailEvidence[];
    srm: { pValue: number; mismatch: boolean };
    primary?: { metric: string; variant: string; diff: number; sequentialPValue: number };
  };
}

/**
 * φ for guardrails: the mixing standard deviation of the one-sided mSPRT as a fraction of the
 * per-unit standard deviation. Guardrails watch for harm large enough to matter within minutes
 * (a few points of error rate, tens of percent of latency), so the mixture is centred on larger
 * effects than the analysis's (sequential.ts), which makes it reach them sooner; the simulation
 * bench shows both the detection times and that the false-rollback rate stays below α.
 */
export const GUARDRAIL_MIXING_SD = 0.2;

/**
 * The one-sided always-valid lower bound on θ from an estimate `estimate` with sampling variance
 * `v`: the smallest θ₀ the one-sided normal-mixture SPRT (mixing θ − θ₀ over a half-normal of
 * variance τ²) does not reject at level `level`. Its likelihood ratio at x = estimate − θ₀ is
 *
 *   Λ⁺(x) = 2 · sqrt(v / (v + τ²)) · exp(τ² x² / (2 v (v + τ²))) · Φ(τ x / sqrt(v (v + τ²)))
 *
 * a non-negative martingale under θ = θ₀ with expectation 1, so by Ville's inequality
 * P(sup Λ⁺ ≥ 1/level) ≤ level: the bound holds at every look at once. Λ⁺ rises with x, so the
 * bound is estimate − x* where Λ⁺(x*) = 1/level. In z (x* = z·sqrt(v (v + τ²))/τ) that is
 * ln 2Φ(z) + z²/2 = ln(1/level) + ½ ln((v + τ²)/v), whose left side increases in z: a
 * safeguarded Newton solve takes a few steps where bisection took sixty, which matters at one
 * call per guardrail every 5 s in the controller and millions in the simulation.
 */
export function alwaysValidLowerBound(estimate: number, v: number, tau2: number, level: number): number {
  if (!Number.isFinite(estimate) || !(v >= 0) || !(tau2 > 0) || !(level > 0 && level < 1)) return NaN;
  if (v === 0) return estimate;
  const target = Math.log(1 / level) + 0.5 * Math.log((v + tau2) / v);
  let lo = -40;
  let hi = Math.sqrt(2 * target) + 1;
  let z = Math.sqrt(2 * Math.max(target - Math.LN2, 0));
  for (let i = 0; i < 100; i++) {
    const cdf = normalCdf(z);
    const f = Math.LN2 + Math.log(Math.max(cdf, 1e-300)) + 0.5 * z * z - target;
    if (Math.abs(f) < 1e-13) break;
    if (f > 0) hi = z;
    else lo = z;
    const next = z - f / (normalPdf(z) / Math.max(cdf, 1e-300) + z);
    z = next > lo && next < hi ? next : (lo + hi) / 2;
    if (hi - lo < 1e-15 * Math.max(1, Math.abs(z))) break;
  }
  return estimate - (z * Math.sqrt(v * (v + tau2))) / Math.sqrt(tau2);
}

interface ArmStats {
  units: number;
  mean: number;
  variance: number;
}

/** Each guardrail of the plan for each treatment against control (the plan's first weight key is not assumed: control is the results' first variant). */
export function evaluateGuardrails(plan: RolloutPlan, results: RolloutResults): GuardrailEvidence[] {
  const keys = results.variants.map((v) => v.key);
  const [control, ...treatments] = keys;
  if (control === undefined) return [];
  const level = plan.alpha / Math.max(1, plan.guardrails.length);
  const out: GuardrailEvidence[] = [];
  for (const guardrail of plan.guardrails) {
    const metric = results.metrics.find((m) => m.metric === guardrail.metric);
    for (const treatment of treatments) {
      const c = metric?.variants.find((v) => v.key === control);
      const t = metric?.variants.find((v) => v.key === treatment);
      out.push(guardrailEvidence(guardrail, control, treatment, c, t, level, plan.minUnitsForDecision, metric === undefined));
    }
  }
  return out;
}

function usable(a: ArmStats, minUnits: number): boolean {
  return a.units >= minUnits && Number.isFinite(a.mean) && Number.isFinite(a.variance) && a.variance >= 0;
}

function guardrailEvidence(
  g: RolloutGuardrail,
  control: string,
  treatment: string,
  c: ArmStats | undefined,
  t: ArmStats | undefined,
  level: number,
  minUnits: number,
  missing: boolean,
): GuardrailEvidence {
  const relative = g.margin > 0;
  const base = { metric: g.metric, variant: treatment, baseline: control, harm: g.harm, margin: g.margin, relative, level, units: { control: c?.units ?? 0, treatment: t?.units ?? 0 } };
  if (missing || c === undefined || t === undefined) return { ...base, estimate: null, bound: null, verdict: 'missing' };
  if (!usable(c, minUnits) || !usable(t, minUnits) || (relative && !(c.mean > 0))) return { ...base, estimate: null, bound: null, verdict: 'insufficient' };
  // The estimate and its variance; per-unit variance for the mixing scale (τ = φ·σ, σ² the variance of one unit's contribution).
  let estimate: number;
  let v: number;
  let perUnit: number;
  if (relative) {
    estimate = t.mean / c.mean - 1;
    const vt = t.variance / (c.mean * c.mean);
    const vc = (t.mean * t.mean * c.variance) / c.mean ** 4;
    v = vt / t.units + vc / c.units;
    perUnit = (vt + vc) / 2;
  } else {
    estimate = t.mean - c.mean;
    v = t.variance / t.units + c.variance / c.units;
    perUnit = (t.variance + c.variance) / 2;
  }
  const tau2 = GUARDRAIL_MIXING_SD * GUARDRAIL_MIXING_SD * perUnit;
  // No spread in either arm (no errors anywhere, say): the difference is known exactly.
  const exact = !(tau2 > 0) || v === 0;
  // For `decrease` the bound is the upper one: the lower bound of the negated difference, negated.
  const bound = exact ? estimate : g.harm === 'increase' ? alwaysValidLowerBound(estimate, v, tau2, level) : -alwaysValidLowerBound(-estimate, v, tau2, level);
  const harmed = g.harm === 'increase' ? bound > g.margin : bound < -g.margin;
  return { ...base, estimate, bound, verdict: harmed ? 'harmed' : 'ok' };
}

/**
 * SPEC §10, in order: no traffic for too long → its action; below `minUnitsForDecision` in any
 * variant → hold (low traffic never aborts); a harmed guardrail → `onHarm`; a sample-ratio
 * mismatch → `onSrm`; then the step must have lasted `minMinutes`, reached `minUnits` in every
 * variant and have every guardrail evaluated; then ramp to the next step, or after the last one
 * `whenDone`.
 */
export function decideRollout(plan: RolloutPlan, results: RolloutResults, state: RolloutClock, now: number, options: { primaryMetric?: string } = {}): RolloutDecision {
  const units = Object.fromEntries(results.variants.map((v) => [v.key, v.units]));
  const guardrails = evaluateGuardrails(plan, results);
  const evidence: RolloutDecision['evidence'] = { units, guardrails, srm: { pValue: results.srm.pValue, mismatch: results.srm.mismatch } };
  const primary = primaryEvidence(results, options.primaryMetric);
  if (primary) evidence.primary = primary;
  const decide = (action: RolloutAction, reason: string, message: string, extra: Partial<RolloutDecision> = {}): RolloutDecision => ({ action, reason, message, ...extra, evidence });
  const step = Math.min(state.step, plan.steps.length - 1);
  const current = plan.steps[step]!;
  const unitsText = results.variants.map((v) => `${v.key} ${v.units}`).join(', ');

  const quietMinutes = (now - state.lastTrafficAt) / 60_000;
  if (plan.onNoTraffic.action !== 'hold' && quietMinutes >= plan.onNoTraffic.afterMinutes) {
    return decide(plan.onNoTraffic.action, 'no-traffic', `no new unit for ${Math.floor(quietMinutes)} minutes (limit ${plan.onNoTraffic.afterMinutes})`);
  }
  const fewest = Math.min(...results.variants.map((v) => v.units));
  if (results.variants.length < 2 || !(fewest >= plan.minUnitsForDecision)) {
    return decide('hold', 'min-units-for-decision', `every variant needs ${plan.minUnitsForDecision} units before any decision (${unitsText})`);
  }
  const harmed = guardrails.find((g) => g.verdict === 'harmed');
  if (harmed) {
    const side = harmed.harm === 'increase' ? 'lower' : 'upper';
    const what = harmed.relative ? `relative difference ${fmt(harmed.estimate)} (${side} bound ${fmt(harmed.bound)}, margin ${harmed.margin})` : `difference ${fmt(harmed.estimate)} (${side} bound ${fmt(harmed.bound)})`;
    return decide(plan.onHarm, 'harm', `${harmed.metric} harmed in ${harmed.variant}: ${what} at level ${fmt(harmed.level)}`);
  }
  if (results.srm.mismatch) {
    return decide(plan.onSrm, 'srm', `sample-ratio mismatch (p = ${fmt(results.srm.pValue)}; ${unitsText})`);
  }
  const minutes = (now - state.stepStartedAt) / 60_000;
  if (minutes < current.minMinutes) {
    return decide('hold', 'step-min-minutes', `step ${step + 1} has run ${Math.floor(minutes)} of ${current.minMinutes} minutes`);
  }
  if (!(fewest >= current.minUnits)) {
    return decide('hold', 'step-min-units', `step ${step + 1} needs ${current.minUnits} units in every variant (${unitsText})`);
  }
  const pending = guardrails.filter((g) => g.verdict === 'missing' || g.verdict === 'insufficient');
  if (pending.length > 0) {
    return decide('hold', 'guardrails-pending', `not yet evaluated: ${[...new Set(pending.map((g) => `${g.metric} (${g.verdict})`))].join(', ')}`);
  }
  if (step + 1 < plan.steps.length) {
    const next = plan.steps[step + 1]!;
    return decide('ramp', 'advance', `step ${step + 1} done: ramp to step ${step + 2} (${weightsText(next.weights)})`, { toStep: step + 1, weights: { ...next.weights } });
  }
  return whenDone(plan, results, primary, decide);
}

function whenDone(
  plan: RolloutPlan,
  results: RolloutResults,
  primary: RolloutDecision['evidence']['primary'],
  decide: (action: RolloutAction, reason: string, message: string, extra?: Partial<RolloutDecision>) => RolloutDecision,
): RolloutDecision {
  if (plan.whenDone === 'hold') return decide('hold', 'done-hold', 'every step is done; the plan holds here for a person to decide');
  if (plan.whenDone === 'promote') {
    const variant = primary?.variant ?? results.variants[results.variants.length - 1]!.key;
    return decide('promote', 'done-promote', `every step is done: promote ${variant}`, { variant });
  }
  if (primary && primary.diff > 0 && primary.sequentialPValue < plan.alpha) {
    return decide('promote', 'done-promote', `every step is done and ${primary.variant} wins on ${primary.metric} (diff ${fmt(primary.diff)}, sequential p = ${fmt(primary.sequentialPValue)})`, { variant: primary.variant });
  }
  return decide(
    'hold',
    'done-primary-not-winning',
    primary
      ? `every step is done; ${primary.variant} does not win on ${primary.metric} yet (diff ${fmt(primary.diff)}, sequential p = ${fmt(primary.sequentialPValue)}, needs < ${plan.alpha})`
      : 'every step is done; no primary metric result to promote on',
  );
}

/** The treatment doing best on the primary metric (higher is better), with its comparison against control. */
function primaryEvidence(results: RolloutResults, metric: string | undefined): RolloutDecision['evidence']['primary'] {
  if (metric === undefined) return undefined;
  const m = results.metrics.find((x) => x.metric === metric);
  if (!m || m.comparisons.length === 0) return undefined;
  const best = m.comparisons.reduce((a, b) => (b.diff > a.diff ? b : a));
  return { metric, variant: best.variant, diff: best.diff, sequentialPValue: best.sequentialPValue };
}

const fmt = (x: number | null) => (x === null || !Number.isFinite(x) ? String(x) : Number(x.toPrecision(3)).toString());
const weightsText = (w: Record<string, number>) => Object.entries(w).map(([k, v]) => `${k} ${v}%`).join(', ');
