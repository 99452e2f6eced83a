import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';

/** @typedef {{id: number, kind: 'success' | 'error', text: string}} Notice */

const listeners = new Set();
let nextId = 1;

/**
 * Shows a short message in the page's live region (announced by screen readers).
 * @param {'success' | 'error'} kind
 * @param {string} text
 */
export function notify(kind, text) {
  const n = { id: nextId++, kind, text };
  listeners.forEach((fn) => fn(n));
}

export function Notices() {
  const [items, setItems] = useState(/** @type {Notice[]} */ ([]));
  useEffect(() => {
    /** @param {Notice} n */
    const on = (n) => {
      setItems((xs) => [...xs.slice(-3), n]);
      setTimeout(() => setItems((xs) => xs.filter((x) => x.id !== n.id)), n.kind === 'error' ? 10000 : 4000);
    };
    listeners.add(on);
    return () => listeners.delete(on);
  }, []);
  const dismiss = (id) => setItems((xs) => xs.filter((x) => x.id !== id));
  return html`
    <div class="notices">
      <div role="status" aria-live="polite">
        ${items.filter((n) => n.kind === 'success').map((n) => html`<p key=${n.id} class="notice success">${n.text}</p>`)}
      </div>
      <div role="alert" aria-live="assertive">
        ${items
          .filter((n) => n.kind === 'error')
          .map(
            (n) => html`<p key=${n.id} class="notice error">
              <span>${n.text}</span>
              <button type="button" class="link" aria-label="Dismiss" onClick=${() => dismiss(n.id)}>×</button>
            </p>`,
          )}
      </div>
    </div>
  `;
}
