import { html } from '../lib/html.js';
import { fieldId } from '../lib/definition.js';
import { DEFAULT_ROLLOUT } from '../lib/rollout-defaults.js';
import { defaultRolloutForm as fromDefaults } from '../lib/rollout-form.js';
import { FieldError } from './field.js';

/** @param {string[]} keys */
const defaultRolloutForm = (keys) => fromDefaults(DEFAULT_ROLLOUT, keys);

/**
 * The plan editor on the experiment form (SPEC §10): off, or a guarded rollout starting from the
 * default plan (5% → 25% → 50%, error_rate and latency_ms as guardrails), every number editable.
 * @param {{rollout: any, keys: string[], metricOptions: string[], disabled: boolean, onChange: (r: any) => void, errorAt: (path: string) => string | undefined}} props
 */
export function RolloutEditor({ rollout: r, keys, metricOptions, disabled, onChange, errorAt }) {
  const on = r !== null;
  /** @param {any} patch */
  const set = (patch) => onChange({ ...r, ...patch });
  /** @param {number} i @param {any} patch */
  const setStep = (i, patch) => set({ steps: r.steps.map((s, k) => (k === i ? { ...s, ...patch } : s)) });
  /** @param {number} i @param {any} patch */
  const setGuardrail = (i, patch) => set({ guardrails: r.guardrails.map((g, k) => (k === i ? { ...g, ...patch } : g)) });
  const stale = on && r.steps.some((s) => s.weights.length !== keys.length);
  /** A number cell of the tables, named for screen readers. @param {string} path @param {string} label @param {string} value @param {(v: string) => void} onInput */
  const cell = (path, label, value, onInput) =>
    html`<input id=${fieldId(path)} class="num" inputmode="decimal" aria-label=${label} value=${value} disabled=${disabled}
      aria-invalid=${errorAt(path) ? 'true' : undefined} onInput=${(e) => onInput(e.currentTarget.value)} />`;
  /** @param {string} path @param {string} label @param {string} value @param {(v: string) => void} onInput */
  const input = (path, label, value, onInput) => html`<label class="inline">${label}${cell(path, label, value, onInput)}</label>`;
  return html`
    <section class="card" aria-labelledby="rollout-editor-title">
      <h2 id="rollout-editor-title">Guarded rollout</h2>
      <label class="check"><input type="checkbox" id="f-rollout" checked=${on} disabled=${disabled} onChange=${(e) => onChange(e.currentTarget.checked ? defaultRolloutForm(keys) : null)} />
        Release it with the autopilot: ramp step by step, test the guardrails against control all the time, roll back by itself</label>
      <${FieldError} id="f-rollout" error=${errorAt('rollout')} />
      ${on &&
      html`
        ${stale && html`<p class="notice warn">The variants changed: <button type="button" onClick=${() => onChange(defaultRolloutForm(keys))}>start the plan again from the default</button></p>`}
        <table class="plan-steps">
          <caption>Steps: each holds at least its minutes and until every variant has its units</caption>
          <thead><tr><th>step</th>${keys.map((k) => html`<th>${k} %</th>`)}<th>min minutes</th><th>min units</th><th></th></tr></thead>
          <tbody>
            ${r.steps.map(
              (s, i) => html`<tr>
                <th scope="row">${i + 1}</th>
                ${keys.map((k, j) => html`<td>${cell(`rollout.steps.${i}.weights.${k}`, `Step ${i + 1} weight of ${k}`, s.weights[j] ?? '', (v) => setStep(i, { weights: keys.map((_, m) => (m === j ? v : s.weights[m] ?? '')) }))}</td>`)}
                <td>${cell(`rollout.steps.${i}.minMinutes`, `Step ${i + 1} minimum minutes`, s.minMinutes, (v) => setStep(i, { minMinutes: v }))}</td>
                <td>${cell(`rollout.steps.${i}.minUnits`, `Step ${i + 1} minimum units`, s.minUnits, (v) => setStep(i, { minUnits: v }))}</td>
                <td><button type="button" class="icon" disabled=${disabled || r.steps.length <= 1} onClick=${() => set({ steps: r.steps.filter((_, k) => k !== i) })} aria-label=${`Remove step ${i + 1}`}>Remove</button></td>
              </tr>
              ${['weights', 'minMinutes', 'minUnits'].map((f) => errorAt(`rollout.steps.${i}.${f}`) && html`<tr><td colspan=${keys.length + 4}><${FieldError} id=${fieldId(`rollout.steps.${i}.${f}`)} error=${errorAt(`rollout.steps.${i}.${f}`)} /></td></tr>`)}
              ${keys.map((k) => errorAt(`rollout.steps.${i}.weights.${k}`) && html`<tr><td colspan=${keys.length + 4}><${FieldError} id=${fieldId(`rollout.steps.${i}.weights.${k}`)} error=${errorAt(`rollout.steps.${i}.weights.${k}`)} /></td></tr>`)}`,
            )}
          </tbody>
        </table>
        <button type="button" disabled=${disabled} onClick=${() => set({ steps: [...r.steps, { ...r.steps[r.steps.length - 1] }] })}>Add step</button>
        <table class="plan-guardrails">
          <caption>Guardrails: harm is tested one-sided at α/k with an always-valid bound; a margin above 0 is relative (0.05 = 5%)</caption>
          <thead><tr><th>metric</th><th>harmful when it</th><th>margin</th><th></th></tr></thead>
          <tbody>
            ${r.guardrails.map(
              (g, i) => html`<tr>
                <td><select aria-label=${`Guardrail ${i + 1} metric`} value=${g.metric} disabled=${disabled} onChange=${(e) => setGuardrail(i, { metric: e.currentTarget.value })}>
                  ${[...new Set([g.metric, ...metricOptions])].map((k) => html`<option value=${k}>${k}</option>`)}</select></td>
                <td><select aria-label=${`Guardrail ${i + 1} harm`} value=${g.harm} disabled=${disabled} onChange=${(e) => setGuardrail(i, { harm: e.currentTarget.value })}>
                  <option value="increase">increases</option><option value="decrease">decreases</option></select></td>
                <td>${cell(`rollout.guardrails.${i}.margin`, `Guardrail ${i + 1} margin`, g.margin, (v) => setGuardrail(i, { margin: v }))}<${FieldError} id=${fieldId(`rollout.guardrails.${i}.margin`)} error=${errorAt(`rollout.guardrails.${i}.margin`)} /></td>
                <td><button type="button" class="icon" disabled=${disabled} onClick=${() => set({ guardrails: r.guardrails.filter((_, k) => k !== i) })} aria-label=${`Remove guardrail ${i + 1}`}>Remove</button></td>
              </tr>`,
            )}
          </tbody>
        </table>
        <button type="button" disabled=${disabled || metricOptions.length === 0} onClick=${() => set({ guardrails: [...r.guardrails, { metric: metricOptions[0], harm: 'increase', margin: '0' }] })}>Add guardrail</button>
        <div class="cols-2">
          ${input('rollout.alpha', 'α (false rollbacks over the plan)', r.alpha, (v) => set({ alpha: v }))}
          ${input('rollout.minUnitsForDecision', 'Units per variant before any decision', r.minUnitsForDecision, (v) => set({ minUnitsForDecision: v }))}
          <label class="inline">On harm <select id="f-rollout-onHarm" value=${r.onHarm} disabled=${disabled} onChange=${(e) => set({ onHarm: e.currentTarget.value })}>
            <option value="rollback">roll back</option><option value="pause">pause</option></select></label>
          <label class="inline">When every step is done <select id="f-rollout-whenDone" value=${r.whenDone} disabled=${disabled} onChange=${(e) => set({ whenDone: e.currentTarget.value })}>
            <option value="promote-if-primary-wins">promote if the primary metric wins</option><option value="promote">promote</option><option value="hold">hold for a person</option></select></label>
        </div>
        <${FieldError} id="f-rollout-alpha" error=${errorAt('rollout.alpha') ?? errorAt('rollout.minUnitsForDecision')} />
      `}
    </section>
  `;
}
