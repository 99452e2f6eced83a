import { html } from '../lib/html.js';
import { LIST_OPS, NUMERIC_OPS, TARGETING_OPS, fieldId } from '../lib/definition.js';
import { errorProps, FieldError } from './field.js';

/**
 * Targeting rules: all must match (SPEC §3). One row per rule: attribute, operator, value.
 * @param {{rules: any[], onChange: (rules: any[]) => void, errorAt: (path: string) => string | undefined, disabled?: boolean}} props
 */
export function TargetingEditor({ rules, onChange, errorAt, disabled }) {
  const update = (i, patch) => onChange(rules.map((r, k) => (k === i ? { ...r, ...patch } : r)));
  const remove = (i) => onChange(rules.filter((_, k) => k !== i));
  const add = () => onChange([...rules, { attribute: '', op: 'eq', valueText: '', exists: true }]);
  const groupError = errorAt('targeting');
  return html`
    <fieldset class="targeting">
      <legend>Targeting</legend>
      <p class="muted small">${rules.length === 0 ? 'No rules: every unit on the route is eligible.' : 'A unit is eligible when all rules match. A missing attribute matches nothing.'}</p>
      ${rules.map((r, i) => {
        const base = `targeting.${i}`;
        const ids = { attribute: fieldId(`${base}.attribute`), op: fieldId(`${base}.op`), value: fieldId(`${base}.value`) };
        const errs = { attribute: errorAt(`${base}.attribute`), op: errorAt(`${base}.op`), value: errorAt(`${base}.value`) ?? errorAt(base) };
        return html`<div class="rule" key=${i} role="group" aria-label=${`Rule ${i + 1}`}>
          <div>
            <label for=${ids.attribute}>Attribute</label>
            <input id=${ids.attribute} value=${r.attribute} placeholder="country" disabled=${disabled} ...${errorProps(ids.attribute, errs.attribute)}
              onInput=${(e) => update(i, { attribute: e.currentTarget.value })} />
            <${FieldError} id=${ids.attribute} error=${errs.attribute} />
          </div>
          <div>
            <label for=${ids.op}>Operator</label>
            <select id=${ids.op} value=${r.op} disabled=${disabled} ...${errorProps(ids.op, errs.op)} onChange=${(e) => update(i, { op: e.currentTarget.value })}>
              ${TARGETING_OPS.map(([op, label]) => html`<option value=${op}>${label} (${op})</option>`)}
            </select>
            <${FieldError} id=${ids.op} error=${errs.op} />
          </div>
          <div class="rule-value">
            <label for=${ids.value}>Value</label>
            ${r.op === 'exists'
              ? html`<select id=${ids.value} value=${String(r.exists)} disabled=${disabled} onChange=${(e) => update(i, { exists: e.currentTarget.value === 'true' })}>
                  <option value="true">is present</option>
                  <option value="false">is absent</option>
                </select>`
              : html`<input id=${ids.value} value=${r.valueText} disabled=${disabled} ...${errorProps(ids.value, errs.value)}
                  type=${NUMERIC_OPS.has(r.op) ? 'number' : 'text'} step="any"
                  placeholder=${LIST_OPS.has(r.op) ? 'JP, US' : NUMERIC_OPS.has(r.op) ? '18' : 'JP'}
                  aria-describedby=${errs.value ? `${ids.value}-error` : `${ids.value}-hint`}
                  onInput=${(e) => update(i, { valueText: e.currentTarget.value })} />`}
            ${!errs.value && html`<p class="hint" id=${`${ids.value}-hint`}>${LIST_OPS.has(r.op) ? 'Comma-separated. Quote to keep numbers as text: "2".' : NUMERIC_OPS.has(r.op) ? 'Numbers only.' : r.op === 'exists' ? '' : 'Quote to keep a number as text.'}</p>`}
            <${FieldError} id=${ids.value} error=${errs.value} />
          </div>
          <button type="button" class="icon" disabled=${disabled} aria-label=${`Remove rule ${i + 1}`} onClick=${() => remove(i)}>Remove</button>
        </div>`;
      })}
      <${FieldError} id=${fieldId('targeting')} error=${groupError} />
      <button type="button" disabled=${disabled} onClick=${add}>Add rule</button>
    </fieldset>
  `;
}
