import { html } from '../lib/html.js';

/**
 * The message under a field, tied to it with aria-describedby (`${id}-error`).
 * @param {{id: string, error?: string | null}} props
 */
export function FieldError({ id, error }) {
  if (!error) return null;
  return html`<p class="field-error" id=${`${id}-error`} data-field-error=${id}>${error}</p>`;
}

/** Props that make an input announce its error. @param {string} id @param {string | null | undefined} error */
export function errorProps(id, error) {
  return error ? { 'aria-invalid': 'true', 'aria-describedby': `${id}-error` } : {};
}
