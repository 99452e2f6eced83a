// Form state ⇄ experiment definition (SPEC §4), and where each validation message belongs.

import { formOfPlan, planOfForm } from './rollout-form.js';
import { evenSplit, toHundredths, toPercent } from './weights.js';

export const TARGETING_OPS = [
  ['eq', 'equals'],
  ['neq', 'does not equal'],
  ['in', 'is one of'],
  ['nin', 'is none of'],
  ['gt', '>'],
  ['gte', '≥'],
  ['lt', '<'],
  ['lte', '≤'],
  ['exists', 'exists'],
];
export const NUMERIC_OPS = new Set(['gt', 'gte', 'lt', 'lte']);
export const LIST_OPS = new Set(['in', 'nin']);

/**
 * A scalar typed into a rule: numbers and true/false become JSON numbers and booleans; quotes
 * keep anything as text ("2" stays the string 2).
 * @param {string} text
 */
export function parseScalar(text) {
  const t = text.trim();
  const quoted = /^"(.*)"$/.exec(t) ?? /^'(.*)'$/.exec(t);
  if (quoted) return quoted[1];
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  if (t === 'true' || t === 'false') return t === 'true';
  return t;
}

/** @param {unknown} v */
function scalarText(v) {
  if (typeof v === 'string') return /^-?\d+(\.\d+)?$|^(true|false)$/.test(v) || v.includes(',') ? JSON.stringify(v) : v;
  return String(v);
}

/**
 * Splits a comma-separated list, keeping commas inside quotes.
 * @param {string} text
 */
export function parseList(text) {
  const items = text.match(/"[^"]*"|'[^']*'|[^,]+/g) ?? [];
  return items.map((s) => s.trim()).filter(Boolean).map(parseScalar);
}

/** @returns {any} */
export function emptyForm(metricKeys = []) {
  return {
    key: '',
    name: '',
    hypothesis: '',
    route: '',
    design: 'ab',
    layer: '',
    trafficPercent: '100',
    salt: '',
    targeting: [],
    variants: [
      { key: 'control', name: '', paramsText: '{}', upstream: '' },
      { key: 'treatment', name: '', paramsText: '{}', upstream: '' },
    ],
    weights: evenSplit(2),
    overridesText: '',
    primary: '',
    secondary: [],
    guardrails: metricKeys.filter((k) => k === 'error_rate' || k === 'latency_ms'),
    correction: 'none',
    sliceByText: '',
    analysis: {},
    allocation: null,
    rollout: null,
    version: null,
  };
}

/** @param {any} e an experiment from the service */
export function formFromExperiment(e) {
  return {
    key: e.key,
    name: e.name ?? '',
    hypothesis: e.hypothesis ?? '',
    route: e.route,
    design: e.design ?? 'ab',
    layer: e.layer === e.key ? '' : e.layer ?? '',
    trafficPercent: String(e.trafficPercent ?? 100),
    salt: e.salt ?? '',
    targeting: (e.targeting ?? []).map((r) => ({
      attribute: r.attribute,
      op: r.op,
      valueText: r.op === 'exists' ? '' : Array.isArray(r.value) ? r.value.map(scalarText).join(', ') : r.value === undefined ? '' : scalarText(r.value),
      exists: r.op === 'exists' ? r.value !== false : true,
    })),
    variants: e.variants.map((v) => ({ key: v.key, name: v.name ?? '', paramsText: JSON.stringify(v.params ?? {}, null, 2), upstream: v.upstream ?? '' })),
    weights: e.variants.map((v) => toHundredths(v.weight)),
    overridesText: Object.entries(e.overrides ?? {})
      .map(([u, v]) => `${u} = ${v}`)
      .join('\n'),
    primary: e.metrics?.primary ?? '',
    secondary: e.metrics?.secondary ?? [],
    guardrails: e.metrics?.guardrails ?? [],
    correction: e.analysis?.correction ?? 'none',
    sliceByText: (e.analysis?.sliceBy ?? []).join(', '),
    // Analysis settings the form does not edit are kept as they are.
    analysis: e.analysis ?? {},
    allocation: e.allocation ?? null,
    rollout: e.rollout ? formOfPlan(e.rollout, e.variants.map((v) => v.key)) : null,
    originalTraffic: String(e.trafficPercent ?? 100),
    originalLayer: e.layer === e.key ? '' : e.layer ?? '',
    version: e.version,
  };
}

/**
 * A variant's params as typed: must be a JSON object.
 * @param {string} text
 * @returns {{value?: Record<string, unknown>, error?: string}}
 */
export function parseParams(text) {
  if (text.trim() === '') return { value: {} };
  let v;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return { error: `not valid JSON: ${/** @type {Error} */ (err).message}` };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return { error: 'must be a JSON object, e.g. {"version": "2"}' };
  const bad = Object.keys(v).find((k) => k.length === 0 || k.length > 128);
  if (bad !== undefined) return { error: 'parameter names must be 1 to 128 characters' };
  return { value: v };
}

/**
 * The definition to send, plus the errors the browser can already tell (the service validates
 * everything again and its answer wins).
 * @param {any} f form state
 * @returns {{definition: any, errors: Record<string, string>}}
 */
export function toDefinition(f) {
  /** @type {Record<string, string>} */
  const errors = {};
  const def = { key: f.key.trim(), route: f.route.trim() };
  // Sent whenever it is not the default, so editing an interleaving experiment keeps it one.
  if (f.design === 'interleave') def.design = 'interleave';
  if (f.name.trim()) def.name = f.name.trim();
  if (f.hypothesis.trim()) def.hypothesis = f.hypothesis.trim();
  if (f.layer.trim()) def.layer = f.layer.trim();
  if (f.salt) def.salt = f.salt;
  const traffic = Number(f.trafficPercent);
  if (f.trafficPercent.trim() === '' || !Number.isFinite(traffic)) errors.trafficPercent = 'enter a percentage between 0 and 100';
  else def.trafficPercent = traffic;
  // Keep the allocated range when neither traffic nor layer changed, so an edit moves nobody.
  if (f.allocation && f.trafficPercent === f.originalTraffic && f.layer === f.originalLayer) def.allocation = f.allocation;

  def.targeting = f.targeting.map((r, i) => {
    const rule = { attribute: r.attribute.trim(), op: r.op };
    if (r.op === 'exists') rule.value = r.exists;
    else if (LIST_OPS.has(r.op)) rule.value = parseList(r.valueText);
    else if (NUMERIC_OPS.has(r.op)) {
      const n = Number(r.valueText);
      if (r.valueText.trim() === '' || !Number.isFinite(n)) errors[`targeting.${i}.value`] = 'enter a number';
      rule.value = n;
    } else rule.value = parseScalar(r.valueText);
    return rule;
  });

  def.variants = f.variants.map((v, i) => {
    const out = { key: v.key.trim(), weight: toPercent(f.weights[i] ?? 0) };
    if (v.name.trim()) out.name = v.name.trim();
    const p = parseParams(v.paramsText);
    if (p.error) errors[`variants.${i}.params`] = p.error;
    out.params = p.value ?? {};
    if (v.upstream.trim()) out.upstream = v.upstream.trim();
    return out;
  });

  /** @type {Record<string, string>} */
  const overrides = {};
  f.overridesText.split('\n').forEach((line, n) => {
    if (line.trim() === '') return;
    const m = /^\s*(.+?)\s*[=:]\s*(\S+)\s*$/.exec(line);
    if (!m) errors.overrides = `line ${n + 1}: write unit-id = variant`;
    else overrides[m[1]] = m[2];
  });
  def.overrides = overrides;

  def.metrics = { guardrails: f.guardrails.slice() };
  if (f.primary) def.metrics.primary = f.primary;
  if (f.secondary.length > 0) def.metrics.secondary = f.secondary.slice();
  const { correction: _correction, sliceBy: _sliceBy, ...analysis } = f.analysis ?? {};
  if (f.correction !== 'none') analysis.correction = f.correction;
  const sliceBy = (f.sliceByText ?? '').split(',').map((/** @type {string} */ a) => a.trim()).filter(Boolean);
  if (sliceBy.length > 0) analysis.sliceBy = sliceBy;
  if (Object.keys(analysis).length > 0) def.analysis = analysis;
  if (f.rollout) {
    const { plan, errors: planErrors } = planOfForm(f.rollout, def.variants.map((v) => v.key));
    def.rollout = plan;
    Object.assign(errors, planErrors);
  }
  return { definition: def, errors };
}

/**
 * Where a message goes: the most specific rendered field whose path starts the error's path
 * (`variants.1.params.version` → `variants.1.params`), or null for the summary only.
 * @param {string} path
 * @param {Set<string>} fields paths of rendered fields
 */
export function fieldFor(path, fields) {
  const parts = path.split('.');
  for (let n = parts.length; n > 0; n--) {
    const p = parts.slice(0, n).join('.');
    if (fields.has(p)) return p;
  }
  return null;
}

/** DOM id of the input for a field path. @param {string} path */
export const fieldId = (path) => 'f-' + path.replace(/[^a-zA-Z0-9_-]/g, '-');
