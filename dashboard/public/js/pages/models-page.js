import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { es, ms } from '../lib/api.js';
import { num } from '../lib/format.js';
import { href } from '../lib/router.js';
import { may } from '../lib/roles.js';
import { useAsync } from '../lib/use-async.js';
import { DEFAULT_ROLLOUT } from '../lib/rollout-defaults.js';
import { defaultVersion, routesServing } from '../lib/model-routes.js';
import { ConfirmDialog } from '../components/confirm-dialog.js';
import { notify } from '../components/notices.js';

/**
 * @typedef {{name: string, passed: boolean, value?: unknown, reason?: string}} Gate
 * @typedef {{version: string, status: string, error?: string, description?: string, features?: string[],
 *   metrics?: Record<string, number>, gates?: Gate[]}} ModelVersion
 * @typedef {{name: string, description?: string, defaultVersion?: string | null, error?: string, versions: ModelVersion[]}} Model
 */

/** @param {{who: {role: string | null}}} props */
export function ModelsPage({ who }) {
  const models = useAsync(() => ms.models(), [], { intervalMs: 15_000 });
  const routes = useAsync(() => es.routes(), []);
  const [pending, setPending] = useState(/** @type {{model: string, version: string, route: string} | null} */ (null));
  const [created, setCreated] = useState(/** @type {string | null} */ (null));
  const canRelease = may(who.role, 'release');

  const start = async () => {
    if (!pending) return;
    const e = await es.release({ route: pending.route, params: { version: pending.version } });
    setCreated(e.key);
    notify('success', `Release ${e.key} started on route ${pending.route}.`);
  };

  return html`
    <div class="page-head"><h1>Models</h1></div>
    <p class="muted">Every version the model-server holds, with the gates it passed at registration and its offline metrics. A version that is <em>ready</em> can be released on a route that serves its model: a guarded rollout against what the route serves now, which makes it the route's default if it wins.</p>
    ${models.error && html`<p class="notice error" role="alert">Cannot load models: ${models.error.message}</p>`}
    ${created && html`<p class="notice success" role="status" data-testid="release-created">Release started: <a href=${href('experiments', created)}>${created}</a></p>`}
    ${models.loading && !models.data && html`<p class="muted">Loading…</p>`}
    ${(models.data ?? []).map((m) => html`<${ModelCard} model=${m} routes=${routesServing(routes.data ?? [], m.name)} canRelease=${canRelease} onRelease=${(version, route) => setPending({ model: m.name, version, route })} />`)}
    ${models.data && models.data.length === 0 && html`<p class="muted">The model-server holds no model.</p>`}
    <${ReleaseDialog} pending=${pending} onClose=${() => setPending(null)} onConfirm=${start} />
  `;
}

/** @param {{model: Model, routes: any[], canRelease: boolean, onRelease: (version: string, route: string) => void}} props */
function ModelCard({ model, routes, canRelease, onRelease }) {
  const [route, setRoute] = useState(routes[0]?.key ?? '');
  const chosen = routes.find((r) => r.key === route) ?? routes[0];
  const metricNames = [...new Set(model.versions.flatMap((v) => Object.keys(v.metrics ?? {})))].sort();
  return html`
    <section class="card" data-model=${model.name}>
      <h2>${model.name}</h2>
      ${model.description && html`<p class="muted">${model.description}</p>`}
      ${model.error && html`<p class="notice error">${model.error}</p>`}
      <p>
        ${routes.length === 0
          ? html`<span class="muted">No route serves this model yet (a route whose path is <code>/v1/models/${model.name}/…</code> or whose default params name it).</span>`
          : html`<label>Release on route <select data-testid="release-route" value=${chosen?.key} onChange=${(e) => setRoute(e.currentTarget.value)}>
              ${routes.map((r) => html`<option value=${r.key}>${r.key}${defaultVersion(r) ? ` (default ${defaultVersion(r)})` : ''}</option>`)}
            </select></label>`}
      </p>
      <div class="table-scroll"><table class="grid" data-testid="versions">
        <caption class="sr-only">Versions of ${model.name}</caption>
        <thead><tr>
          <th scope="col">Version</th><th scope="col">Status</th><th scope="col">Gates</th>
          ${metricNames.map((k) => html`<th scope="col" class="num">${k}</th>`)}
          <th scope="col"><span class="sr-only">Actions</span></th>
        </tr></thead>
        <tbody>
          ${model.versions.map((v) => {
            const isDefault = chosen && defaultVersion(chosen) === v.version;
            const why = !canRelease ? 'Releasing needs the releaser role' : !chosen ? 'No route serves this model' : v.status !== 'ready' ? `Version ${v.version} is ${v.status}` : isDefault ? `Route ${chosen.key} already serves ${v.version} by default` : '';
            return html`<tr data-version=${v.version}>
              <th scope="row">${v.version}${model.defaultVersion === v.version ? html` <span class="badge" title="The model's default version">default</span>` : ''}<div class="muted small">${v.description ?? ''}</div></th>
              <td><span class=${`badge ${v.status === 'ready' ? 'ok' : 'warn'}`} data-testid="version-status">${v.status}</span>${v.error ? html`<div class="muted small">${v.error}</div>` : ''}</td>
              <td><${Gates} gates=${v.gates} /></td>
              ${metricNames.map((k) => html`<td class="num">${v.metrics?.[k] === undefined ? '—' : num(v.metrics[k])}</td>`)}
              <td><button type="button" class="small" disabled=${!!why} title=${why || undefined} onClick=${() => onRelease(v.version, chosen.key)}>Release this version</button></td>
            </tr>`;
          })}
        </tbody>
      </table></div>
    </section>
  `;
}

/** The gates with their figures, when the model-server reports them; nothing otherwise. @param {{gates?: Gate[]}} props */
function Gates({ gates }) {
  if (!gates || gates.length === 0) return html`<span class="muted" title="Put in the model directory by hand: no gates were run">—</span>`;
  return html`<ul class="gates">
    ${gates.map((g) => html`<li data-gate=${g.name}>
      <span class=${`badge ${g.passed ? 'ok' : 'warn'}`}>${g.passed ? '✓' : '✗'} ${g.name}</span>
      ${g.value !== undefined ? html` <span class="small">${figures(g.value)}</span>` : ''}
      ${g.reason ? html` <span class="muted small">${g.reason}</span>` : ''}
    </li>`)}
  </ul>`;
}

/** A gate's figure: `p50Ms 0.0167 · p99Ms 6.27` for an object of numbers, the value itself otherwise. @param {unknown} v */
function figures(v) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return typeof v === 'string' ? v : JSON.stringify(v);
  return Object.entries(v)
    .map(([k, x]) => `${k} ${typeof x === 'number' ? num(x) : JSON.stringify(x)}`)
    .join(' · ');
}

/** @param {{pending: {model: string, version: string, route: string} | null, onClose: () => void, onConfirm: () => Promise<void>}} props */
function ReleaseDialog({ pending, onClose, onConfirm }) {
  const plan = DEFAULT_ROLLOUT;
  return html`<${ConfirmDialog} open=${!!pending} title=${pending ? `Release ${pending.model} ${pending.version} on ${pending.route}?` : ''} confirmLabel="Start the release" onConfirm=${onConfirm} onClose=${onClose}>
    ${pending && html`<div data-testid="release-confirm">
      <p>Route <strong>${pending.route}</strong> gets a guarded rollout of params <code>${JSON.stringify({ version: pending.version })}</code> (treatment) against what it serves now (control).</p>
      <p>Plan (the default of the experiment-service):</p>
      <ol class="steps">
        ${plan.steps.map((s, i) => html`<li class="step">Step ${i + 1}: ${s.weights.treatment}% treatment, at least ${s.minMinutes} min and ${s.minUnits} units per variant</li>`)}
      </ol>
      <p class="small">Guardrails: ${plan.guardrails.map((g) => `${g.metric} must not ${g.harm}${g.margin ? ` by more than ${g.margin * 100}%` : ''}`).join('; ')}. On harm: ${plan.onHarm}. When every step is done: ${plan.whenDone}. If it wins, ${JSON.stringify({ version: pending.version })} becomes route ${pending.route}'s default.</p>
    </div>`}
  </${ConfirmDialog}>`;
}
