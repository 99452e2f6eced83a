import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { agg, es } from '../lib/api.js';
import { age, dateTime, pct, pValue, signedPct, verdict } from '../lib/format.js';
import { mapLimit, useAsync } from '../lib/use-async.js';
import { href } from '../lib/router.js';
import { may, refusal } from '../lib/roles.js';
import { StatusBadge } from '../components/status-badge.js';

/** Statuses that have results (drafts have none; archived ones are out of sight). */
const WITH_RESULTS = new Set(['running', 'paused', 'released', 'rolled_back']);

/**
 * Every experiment with its results, a few queries at a time (each is an aggregation in the
 * metrics store); an experiment whose results cannot be read yet simply shows none.
 */
async function loadAll() {
  const experiments = await es.experiments();
  const results = await mapLimit(experiments, 4, (e) => (WITH_RESULTS.has(e.status) ? agg.results(e.key).catch(() => null) : Promise.resolve(null)));
  return experiments.map((e, i) => ({ experiment: e, results: results[i] }));
}

/** @param {{experiment: any, results: any}} row */
function PrimaryLift({ experiment, results }) {
  const primary = experiment.metrics?.primary;
  if (!primary) return html`<span class="muted">no primary metric</span>`;
  const m = results?.metrics?.find((x) => x.metric === primary);
  if (!m || !m.comparisons?.length) return html`<span class="muted">${primary}: no data</span>`;
  return html`
    <ul class="plain lifts">
      ${m.comparisons.map((c) => {
        const v = verdict(c);
        const ci = c.relCi95 ?? [];
        return html`<li class=${`lift lift-${v}`}
          title=${`${c.variant} vs ${c.baseline}: ${signedPct(c.relLift)} (95% ${signedPct(ci[0])} to ${signedPct(ci[1])}), p = ${pValue(c.pValue)}`}>
          <span class="metric-name">${primary}</span> ${m.comparisons.length > 1 ? html`<span class="muted">${c.variant}</span> ` : ''}
          <strong>${signedPct(c.relLift)}</strong>
          <span class="small muted"> [${signedPct(ci[0])}, ${signedPct(ci[1])}]</span>
          ${v === 'win' ? html` <span class="tag win">significant ▲</span>` : v === 'loss' ? html` <span class="tag loss">significant ▼</span>` : ''}
        </li>`;
      })}
    </ul>
  `;
}

/** @param {{results: any}} props */
function Srm({ results }) {
  if (!results?.srm) return html`<span class="muted">—</span>`;
  if (results.srm.mismatch) return html`<span class="tag loss" title=${`Sample-ratio mismatch: p = ${pValue(results.srm.pValue)}`}>⚠ SRM p ${pValue(results.srm.pValue)}</span>`;
  return html`<span class="muted small">ok (p ${pValue(results.srm.pValue)})</span>`;
}

/** @param {{who: {role: string | null}}} props */
export function ExperimentsList({ who }) {
  const [status, setStatus] = useState('active');
  const [query, setQuery] = useState('');
  const { data, error, loading } = useAsync(loadAll, [], { intervalMs: 15000 });
  const canEdit = may(who.role, 'edit');

  const rows = (data ?? []).filter(({ experiment: e }) => {
    if (status === 'active' && (e.status === 'archived' || e.status === 'rolled_back')) return false;
    if (status !== 'active' && status !== 'all' && e.status !== status) return false;
    const q = query.trim().toLowerCase();
    return !q || e.key.includes(q) || (e.name ?? '').toLowerCase().includes(q) || e.route.includes(q);
  });

  return html`
    <div class="page-head">
      <h1>Experiments</h1>
      <div class="toolbar">
        <label class="inline">Status
          <select value=${status} onChange=${(e) => setStatus(e.currentTarget.value)}>
            <option value="active">Active (not archived or rolled back)</option>
            <option value="all">All</option>
            ${['draft', 'running', 'paused', 'released', 'rolled_back', 'archived'].map((s) => html`<option value=${s}>${s.replace('_', ' ')}</option>`)}
          </select>
        </label>
        <label class="inline">Search
          <input type="search" value=${query} placeholder="key, name or route" onInput=${(e) => setQuery(e.currentTarget.value)} />
        </label>
        ${canEdit
          ? html`<a class="button primary" href=${href('experiments', 'new')}>New experiment</a>`
          : html`<button type="button" class="primary" disabled title=${refusal(who.role, 'edit')}>New experiment</button>`}
      </div>
    </div>
    ${!canEdit && html`<p class="muted small">${refusal(who.role, 'edit')}</p>`}
    ${error && html`<p class="notice error" role="alert">Cannot load experiments: ${error.message}</p>`}
    ${loading && !data ? html`<p aria-busy="true">Loading…</p>` : ''}
    ${data &&
    html`<div class="table-scroll"><table class="grid experiments">
      <caption class="sr-only">Experiments, ${rows.length} shown</caption>
      <thead>
        <tr>
          <th scope="col">Experiment</th>
          <th scope="col">Status</th>
          <th scope="col">Route</th>
          <th scope="col" class="num">Traffic</th>
          <th scope="col">Age</th>
          <th scope="col">Primary metric lift</th>
          <th scope="col">SRM</th>
        </tr>
      </thead>
      <tbody>
        ${rows.length === 0 && html`<tr><td colspan="7" class="muted">No experiments${status !== 'all' ? ' with this status' : ''}.</td></tr>`}
        ${rows.map(
          ({ experiment: e, results }) => html`<tr key=${e.key} data-experiment=${e.key}>
            <td><a href=${href('experiments', e.key)}><strong>${e.name ?? e.key}</strong></a><div class="small muted mono">${e.key}</div></td>
            <td><${StatusBadge} status=${e.status} />${e.status === 'released' && e.releasedVariant ? html`<div class="small muted">${e.releasedVariant}</div>` : ''}</td>
            <td class="mono">${e.route}</td>
            <td class="num">${pct((e.trafficPercent ?? 100) / 100, 0)}<div class="small muted">${e.variants.length} variants</div></td>
            <td title=${`created ${dateTime(e.createdAt)}${e.startedAt ? `, started ${dateTime(e.startedAt)}` : ''}`}>
              ${e.startedAt ? `${age(e.startedAt)}` : html`<span class="muted">created ${age(e.createdAt)} ago</span>`}
            </td>
            <td><${PrimaryLift} experiment=${e} results=${results} /></td>
            <td><${Srm} results=${results} /></td>
          </tr>`,
        )}
      </tbody>
    </table></div>`}
  `;
}
