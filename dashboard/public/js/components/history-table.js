import { html } from '../lib/html.js';
import { changes } from '../lib/audit.js';
import { dateTime } from '../lib/format.js';

/** @param {{entries: any[]}} props */
export function HistoryTable({ entries }) {
  const rows = entries.slice().reverse(); // newest first
  if (rows.length === 0) return html`<p class="muted">No changes recorded.</p>`;
  return html`<table class="grid compact history" data-testid="history">
    <caption class="sr-only">Audit history, newest first</caption>
    <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">What changed</th></tr></thead>
    <tbody>
      ${rows.map((a, i) => {
        const actor = a.actor ?? a.who ?? {};
        const diff = changes(a.before, a.after);
        return html`<tr key=${i} data-action=${a.action}>
          <td class="nowrap">${dateTime(a.at ?? a.when ?? a.ts)}</td>
          <td>${typeof actor === 'string' ? actor : html`${actor.name ?? '?'} <span class="muted small">${actor.role ?? ''}</span>`}</td>
          <td><span class="tag">${a.action}</span></td>
          <td>
            ${a.before == null && a.after != null
              ? html`<span class="muted">created</span>`
              : diff.length === 0
                ? html`<span class="muted">—</span>`
                : html`<ul class="plain diff">${diff.map(
                    (d) => html`<li>${d.field && html`<span class="mono">${d.field}</span>: `}<del>${d.before}</del> → <ins>${d.after}</ins></li>`,
                  )}</ul>`}
          </td>
        </tr>`;
      })}
    </tbody>
  </table>`;
}
