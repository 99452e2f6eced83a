import { html } from '../lib/html.js';
import { fieldId } from '../lib/definition.js';
import { errorProps, FieldError } from './field.js';

/**
 * Messages by field for small forms: the service's 400 names paths (`defaultParams.x`), shown
 * at the first field whose path starts them; the rest go to `general`.
 * @param {{path: string, message: string}[]} fields
 * @param {string[]} known
 */
export function errorsByField(fields, known) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const f of fields) {
    const at = known.find((k) => f.path === k || f.path.startsWith(k + '.')) ?? 'general';
    out[at] = out[at] ? `${out[at]}; ${f.message}` : f.path === '(body)' || at !== 'general' ? f.message : `${f.path}: ${f.message}`;
  }
  return out;
}

/**
 * A labelled field with its error and hint.
 * @param {{name: string, label: string, error?: string, hint?: string, children: (id: string, ep: object) => any}} props
 */
export function Field({ name, label, error, hint, children }) {
  const id = fieldId(name);
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${children(id, errorProps(id, error))}
    ${hint && !error && html`<p class="hint">${hint}</p>`}
    <${FieldError} id=${id} error=${error} />
  </div>`;
}
