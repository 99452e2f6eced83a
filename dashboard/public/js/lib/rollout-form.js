// The plan editor's state ⇄ a rollout plan (SPEC §10). Numbers are kept as typed text until the
// plan is built, so a half-typed value is never silently turned into something else.

import { toHundredths, toPercent } from './weights.js';

/**
 * SPEC §10's default plan for these variants: control's share per step as in the default, the
 * rest split evenly between the treatments (hundredths, the remainder to the first).
 * @param {any} defaults SPEC §10's default plan for a control and a treatment (from core, served as rollout-defaults.js)
 * @param {string[]} keys variant keys, control first
 */
export function defaultRolloutForm(defaults, keys) {
  const steps = defaults.steps.map((s) => {
    const control = toHundredths(s.weights.control ?? 100);
    const rest = 10_000 - control;
    const n = Math.max(1, keys.length - 1);
    const each = Math.floor(rest / n);
    const weights = keys.map((_, i) => (i === 0 ? control : each + (i === 1 ? rest - each * n : 0)));
    return { weights: weights.map((w) => String(toPercent(w))), minMinutes: String(s.minMinutes), minUnits: String(s.minUnits) };
  });
  return formOfPlan({ ...defaults, steps: [] }, keys, steps);
}

/**
 * @param {any} plan a plan from the service
 * @param {string[]} keys
 * @param {any[]} [steps] already-formed steps
 */
export function formOfPlan(plan, keys, steps) {
  return {
    steps: steps ?? plan.steps.map((s) => ({ weights: keys.map((k) => String(s.weights[k] ?? '')), minMinutes: String(s.minMinutes), minUnits: String(s.minUnits) })),
    guardrails: plan.guardrails.map((g) => ({ metric: g.metric, harm: g.harm, margin: String(g.margin) })),
    alpha: String(plan.alpha),
    minUnitsForDecision: String(plan.minUnitsForDecision),
    onHarm: plan.onHarm,
    whenDone: plan.whenDone,
  };
}

/**
 * The plan to send, and the errors the browser can already tell, by field path.
 * @param {any} f the editor's state
 * @param {string[]} keys variant keys
 * @returns {{plan: any, errors: Record<string, string>}}
 */
export function planOfForm(f, keys) {
  /** @type {Record<string, string>} */
  const errors = {};
  /** @param {string} text @param {string} path @param {{int?: boolean, min?: number, max?: number}} [o] */
  const num = (text, path, o = {}) => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || (o.int && !Number.isInteger(n)) || (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
      errors[path] = o.int ? 'enter a whole number' : 'enter a number';
    }
    return n;
  };
  const steps = f.steps.map((s, i) => {
    const weights = Object.fromEntries(keys.map((k, j) => [k, num(s.weights[j] ?? '', `rollout.steps.${i}.weights.${k}`, { min: 0, max: 100 })]));
    const total = Object.values(weights).reduce((sum, w) => sum + toHundredths(Number.isFinite(w) ? w : 0), 0);
    if (total !== 10_000 && !Object.keys(errors).some((p) => p.startsWith(`rollout.steps.${i}.weights`))) errors[`rollout.steps.${i}.weights`] = `weights must sum to 100 (now ${toPercent(total)})`;
    return { weights, minMinutes: num(s.minMinutes, `rollout.steps.${i}.minMinutes`, { min: 0 }), minUnits: num(s.minUnits, `rollout.steps.${i}.minUnits`, { int: true, min: 0 }) };
  });
  const guardrails = f.guardrails.map((g, i) => ({ metric: g.metric, harm: g.harm, margin: num(g.margin, `rollout.guardrails.${i}.margin`, { min: 0 }) }));
  const plan = {
    steps,
    guardrails,
    alpha: num(f.alpha, 'rollout.alpha', { min: 0 }),
    minUnitsForDecision: num(f.minUnitsForDecision, 'rollout.minUnitsForDecision', { int: true, min: 1 }),
    onHarm: f.onHarm,
    whenDone: f.whenDone,
  };
  return { plan, errors };
}
