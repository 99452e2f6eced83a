import { html } from '../lib/html.js';

const LABELS = { draft: 'Draft', running: 'Running', paused: 'Paused', released: 'Released', rolled_back: 'Rolled back', archived: 'Archived' };

/** @param {{status: string}} props */
export function StatusBadge({ status }) {
  return html`<span class=${`badge status-${status}`}>${LABELS[status] ?? status}</span>`;
}
