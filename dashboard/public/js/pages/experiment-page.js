import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { agg, es } from '../lib/api.js';
import { age, dateTime, json } from '../lib/format.js';
import { ruleText, scope } from '../lib/impact.js';
import { allowed, allowedText } from '../lib/lifecycle.js';
import { href } from '../lib/router.js';
import { may, refusal } from '../lib/roles.js';
import { useAsync } from '../lib/use-async.js';
import { rangeText, variantRanges } from '../lib/buckets.js';
import { ConfirmDialog } from '../components/confirm-dialog.js';
import { HistoryTable } from '../components/history-table.js';
import { notify } from '../components/notices.js';
import { ReleasePanel } from '../components/release-panel.js';
import { RolloutPanel } from '../components/rollout-panel.js';
import { ResultsView } from '../components/results-view.js';
import { StatusBadge } from '../components/status-badge.js';
import { Tabs } from '../components/tabs.js';

/** @param {{e: any}} props */
function Definition({ e }) {
  const ranges = variantRanges(e.variants);
  return html`<div class="cols-2">
    <section class="card">
      <h3>Variants</h3>
      <table class="grid compact">
        <thead><tr><th scope="col">Variant</th><th scope="col" class="num">Weight</th><th scope="col">Variant buckets</th><th scope="col">Params</th></tr></thead>
        <tbody>${e.variants.map((v, i) => html`<tr><th scope="row" class="mono">${v.key}${v.name ? html`<div class="small muted">${v.name}</div>` : ''}</th>
          <td class="num">${v.weight}%</td><td class="mono">${rangeText(ranges[i])}</td>
          <td><pre class="json">${json(v.params ?? {})}</pre>${v.upstream ? html`<div class="small mono">→ ${v.upstream}</div>` : ''}</td></tr>`)}</tbody>
      </table>
    </section>
    <section class="card">
      <h3>Targeting and metrics</h3>
      <dl class="facts">
        <dt>Targeting</dt><dd>${e.targeting?.length ? html`<ul class="plain">${e.targeting.map((r) => html`<li class="mono">${ruleText(r)}</li>`)}</ul>` : 'everyone on the route'}</dd>
        <dt>Primary metric</dt><dd class="mono">${e.metrics?.primary ?? '—'}</dd>
        <dt>Guardrails</dt><dd class="mono">${(e.metrics?.guardrails ?? []).join(', ') || '—'}</dd>
        <dt>Overrides</dt><dd class="mono">${Object.entries(e.overrides ?? {}).map(([u, v]) => `${u} → ${v}`).join(', ') || '—'}</dd>
        <dt>Salt</dt><dd class="mono">${e.salt || '(none)'}</dd>
        <dt>Hypothesis</dt><dd>${e.hypothesis ?? '—'}</dd>
        <dt>Version</dt><dd>${e.version} · updated ${dateTime(e.updatedAt)}</dd>
      </dl>
    </section>
  </div>`;
}

const TRANSITIONS = {
  start: { label: 'Start', done: 'Started', confirm: 'Start now' },
  pause: { label: 'Pause', done: 'Paused', confirm: 'Pause now' },
  archive: { label: 'Archive', done: 'Archived', confirm: 'Archive' },
};

/** @param {{who: {role: string | null}, experimentKey: string}} props */
export function ExperimentPage({ who, experimentKey }) {
  const [tab, setTab] = useState('results');
  const [pending, setPending] = useState(/** @type {null | 'start' | 'pause' | 'archive'} */ (null));
  const exp = useAsync(() => es.experiment(experimentKey), [experimentKey], { intervalMs: 15000 });
  const history = useAsync(() => (tab === 'history' ? es.history(experimentKey) : Promise.resolve(null)), [experimentKey, tab]);
  // The release tab shows the latest results in its promote dialog.
  const results = useAsync(() => (tab === 'release' ? agg.results(experimentKey).catch(() => null) : Promise.resolve(null)), [experimentKey, tab]);
  const e = exp.data;

  if (exp.error && !e) {
    return html`<p class="notice error" role="alert">${exp.error.status === 404 ? `No experiment ${experimentKey}.` : `Cannot load ${experimentKey}: ${exp.error.message}`}</p>
      <a href=${href('experiments')}>Back to experiments</a>`;
  }
  if (!e) return html`<p aria-busy="true">Loading…</p>`;

  const canEdit = may(who.role, 'edit');
  const s = scope(e);
  const refresh = () => {
    exp.reload();
    if (tab === 'history') history.reload();
  };
  const why = (action) => (!canEdit ? refusal(who.role, 'edit') : !allowed(action, e.status) ? `${action} is ${allowedText(action)}` : undefined);

  return html`
    <nav class="crumbs" aria-label="Breadcrumb"><a href=${href('experiments')}>Experiments</a> / <span aria-current="page">${e.key}</span></nav>
    <div class="page-head">
      <div>
        <h1>${e.name ?? e.key} <${StatusBadge} status=${e.status} /></h1>
        <p class="facts-line">
          <span class="mono">${e.key}</span> · route <a class="mono" href=${href('routes')}>${e.route}</a> · layer <span class="mono">${s.layer}</span>${' '}
          · ${e.trafficPercent}% traffic, buckets ${s.allocationText} · ${e.startedAt ? `started ${age(e.startedAt)} ago` : `created ${age(e.createdAt)} ago`}
          ${e.status === 'released' && html` · released <span class="mono">${e.releasedVariant}</span>`}
        </p>
        ${e.hypothesis && html`<p class="muted">${e.hypothesis}</p>`}
      </div>
      <div class="toolbar">
        ${canEdit && allowed('edit', e.status)
          ? html`<a class="button" href=${href('experiments', e.key, 'edit')}>Edit</a>`
          : html`<button type="button" disabled title=${why('edit')}>Edit</button>`}
        ${/** @type {const} */ (['start', 'pause', 'archive']).map(
          (a) => html`<button type="button" class=${a === 'start' ? 'primary' : ''} disabled=${!!why(a)} title=${why(a)} onClick=${() => setPending(a)}>${TRANSITIONS[a].label}</button>`,
        )}
      </div>
    </div>
    ${!canEdit && html`<p class="small muted">${refusal(who.role, 'edit')}</p>`}

    <${Tabs} id="exp" selected=${tab} onSelect=${setTab} tabs=${[
      ['results', 'Results'],
      ['release', 'Release'],
      ['definition', 'Definition'],
      ['history', 'History'],
    ]}>
      ${tab === 'results' && html`<${ResultsView} experiment=${e} />`}
      ${tab === 'release' && e.rollout && html`<${RolloutPanel} experiment=${e} who=${who} onChanged=${refresh} />`}
      ${tab === 'release' && html`<${ReleasePanel} key=${e.version} experiment=${e} results=${results.data} who=${who} onChanged=${refresh} />`}
      ${tab === 'definition' && html`<${Definition} e=${e} />`}
      ${tab === 'history' &&
      (history.error
        ? html`<p class="notice error" role="alert">Cannot load the history: ${history.error.message}</p>`
        : history.data
          ? html`<${HistoryTable} entries=${history.data} />`
          : html`<p aria-busy="true">Loading…</p>`)}
    <//>

    ${pending &&
    html`<${ConfirmDialog} open=${true} title=${`${TRANSITIONS[pending].label} ${e.key}`} confirmLabel=${TRANSITIONS[pending].confirm} danger=${pending !== 'start'}
      onClose=${() => setPending(null)}
      onConfirm=${async () => {
        await es.transition(e.key, pending, e.version);
        notify('success', `${TRANSITIONS[pending].done} ${e.key}.`);
        refresh();
      }}>
      ${pending === 'start' &&
      html`<p data-testid="start-impact">Units on route <code>${e.route}</code> ${s.targeting} whose bucket in layer <code>${s.layer}</code> is in <strong>${s.allocationText}</strong> (${s.share} of the layer) start getting a variant:${' '}
        ${variantRanges(e.variants).map((r, i) => html`${i ? ', ' : ''}<span class="mono">${r.key}</span> for variant buckets ${rangeText(r)}`)}.
        Each gets an exposure logged.</p>`}
      ${pending === 'pause' &&
      html`<p>The experiment stops affecting traffic at once: units in layer <code>${s.layer}</code> buckets <strong>${s.allocationText}</strong> on route <code>${e.route}</code> get the route's defaults until it is started again. Assignments stay the same when it resumes.</p>`}
      ${pending === 'archive' && html`<p>The experiment leaves the active list. It affects no traffic; its results and history stay readable.</p>`}
    <//>`}
  `;
}
