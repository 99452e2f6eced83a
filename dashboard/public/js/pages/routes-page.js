import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { agg, es } from '../lib/api.js';
import { dateTime, json, num, pct } from '../lib/format.js';
import { href } from '../lib/router.js';
import { parseParams } from '../lib/definition.js';
import { may, refusal } from '../lib/roles.js';
import { useAsync } from '../lib/use-async.js';
import { errorsByField, Field } from '../components/simple-form.js';
import { notify } from '../components/notices.js';

const EMPTY = { key: '', upstream: '', path: '/', timeoutMs: '1000', defaultParamsText: '{}', fallbackText: '', shadowText: '' };
const KNOWN = ['key', 'upstream', 'path', 'timeoutMs', 'defaultParams', 'fallback', 'shadow'];

/** A signed difference with its interval, e.g. "+2.1 ms (1.0 … 3.2)". @param {{diff: number | null, ci95: (number | null)[]}} d @param {(x: number) => string} f */
const signed = (d, f) => (d.diff === null ? '—' : `${d.diff >= 0 ? '+' : ''}${f(d.diff)} (${d.ci95[0] === null ? '—' : f(d.ci95[0])} … ${d.ci95[1] === null ? '—' : f(d.ci95[1])})`);

/**
 * A route's shadow (SPEC §13): the shadow's answers against the clients' on the same requests,
 * and a guarded rollout of its params in one action.
 * @param {{route: any, canRelease: boolean}} props
 */
function ShadowCard({ route, canRelease }) {
  const figures = useAsync(() => agg.shadow(route.key), [route.key], { intervalMs: 10_000 });
  const [created, setCreated] = useState(/** @type {string | null} */ (null));
  const f = figures.data;
  const release = async () => {
    try {
      const e = await es.release({ route: route.key, params: route.shadow.params });
      setCreated(e.key);
      notify('success', `Guarded rollout ${e.key} of the shadow started on route ${route.key}.`);
    } catch (err) {
      notify('error', `Cannot start the rollout: ${err.message}`);
    }
  };
  return html`<div class="card" data-testid="shadow" data-route=${route.key}>
    <h3>Shadow of <span class="mono">${route.key}</span>: <span class="mono">${JSON.stringify(route.shadow.params)}</span> on ${route.shadow.percent}% of requests</h3>
    ${figures.error && html`<p class="notice error">Cannot load the shadow figures: ${figures.error.message}</p>`}
    ${f && html`<table class="grid compact">
      <caption class="sr-only">Shadow against the answered requests, pair by pair</caption>
      <thead><tr><th scope="col">Pairs</th><th scope="col" class="num">Error rate (answered → shadow)</th><th scope="col" class="num">Latency difference</th><th scope="col" class="num">Identical ${route.shadow.compare ?? 'predictions'}</th><th scope="col" class="num">Mean abs. difference</th><th scope="col" class="num">Rank correlation</th></tr></thead>
      <tbody><tr>
        <td class="num" data-testid="shadow-pairs">${num(f.pairs)}</td>
        <td class="num">${pct(f.primary.errorRate, 1)} → ${pct(f.shadow.errorRate, 1)}</td>
        <td class="num">${signed(f.latencyDiffMs, (x) => `${num(x)} ms`)}</td>
        <td class="num">${pct(f.agreement.identical, 1)}</td>
        <td class="num">${f.agreement.meanAbsDiff === null ? '—' : num(f.agreement.meanAbsDiff)}</td>
        <td class="num">${f.agreement.rankCorrelation === null ? '—' : num(f.agreement.rankCorrelation)}</td>
      </tr></tbody>
    </table>
    <p class="small muted">Each shadowed request is answered by the route as usual; its copy goes to the shadow after the answer. Differences are shadow − answered, with paired 95% intervals.</p>`}
    ${created
      ? html`<p class="notice success" role="status">Guarded rollout started: <a href=${href('experiments', created)}>${created}</a></p>`
      : html`<button type="button" class="primary small" disabled=${!canRelease} onClick=${release}>Start a guarded rollout of the shadow</button>`}
  </div>`;
}

/** @param {{who: {role: string | null}}} props */
export function RoutesPage({ who }) {
  const routes = useAsync(() => es.routes(), []);
  const [form, setForm] = useState(EMPTY);
  const [errors, setErrors] = useState(/** @type {Record<string, string>} */ ({}));
  const [busy, setBusy] = useState(false);
  const canAdmin = may(who.role, 'admin');
  const set = (patch) => setForm({ ...form, ...patch });

  const edit = (r) => {
    setErrors({});
    setForm({
      key: r.key,
      upstream: r.upstream,
      path: r.path ?? '/',
      timeoutMs: String(r.timeoutMs ?? 1000),
      defaultParamsText: JSON.stringify(r.defaultParams ?? {}, null, 2),
      fallbackText: r.fallback ? JSON.stringify(r.fallback, null, 2) : '',
      shadowText: r.shadow ? JSON.stringify(r.shadow, null, 2) : '',
    });
    document.getElementById('f-key')?.focus();
  };

  const submit = async (e) => {
    e.preventDefault();
    /** @type {Record<string, string>} */
    const local = {};
    if (!form.key.trim()) local.key = 'enter a key';
    const params = parseParams(form.defaultParamsText);
    if (params.error) local.defaultParams = params.error;
    let fallback;
    if (form.fallbackText.trim()) {
      try {
        fallback = JSON.parse(form.fallbackText);
      } catch (err) {
        local.fallback = `not valid JSON: ${err.message}`;
      }
    }
    let shadow;
    if (form.shadowText.trim()) {
      try {
        shadow = JSON.parse(form.shadowText);
      } catch (err) {
        local.shadow = `not valid JSON: ${err.message}`;
      }
    }
    const timeout = Number(form.timeoutMs);
    if (!Number.isInteger(timeout)) local.timeoutMs = 'enter whole milliseconds';
    setErrors(local);
    if (Object.keys(local).length) return;
    const body = { upstream: form.upstream.trim(), path: form.path.trim() || '/', timeoutMs: timeout, defaultParams: params.value };
    if (fallback !== undefined) body.fallback = fallback;
    if (shadow !== undefined) body.shadow = shadow;
    setBusy(true);
    try {
      await es.putRoute(form.key.trim(), body);
      notify('success', `Saved route ${form.key.trim()}.`);
      setForm(EMPTY);
      routes.reload();
    } catch (err) {
      setErrors(err.fields?.length ? errorsByField(err.fields, KNOWN) : { general: err.status === 403 ? `Refused (403): ${err.message}` : err.message });
    } finally {
      setBusy(false);
    }
  };

  return html`
    <div class="page-head"><h1>Routes</h1></div>
    <p class="muted">A route is what clients call on the gateway (<code>/v1/routes/:route/…</code>): its upstream model server and the parameters every request gets before experiments apply.</p>
    ${routes.error && html`<p class="notice error" role="alert">Cannot load routes: ${routes.error.message}</p>`}
    <div class="table-scroll"><table class="grid" data-testid="routes">
      <caption class="sr-only">Routes</caption>
      <thead><tr><th scope="col">Route</th><th scope="col">Upstream</th><th scope="col" class="num">Timeout</th><th scope="col">Default params</th><th scope="col">Fallback</th><th scope="col">Updated</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>
        ${(routes.data ?? []).length === 0 && html`<tr><td colspan="7" class="muted">${routes.loading ? 'Loading…' : 'No routes yet.'}</td></tr>`}
        ${(routes.data ?? []).map(
          (r) => html`<tr data-route=${r.key}>
            <th scope="row" class="mono">${r.key}</th>
            <td class="mono">${r.upstream}${r.path && r.path !== '/' ? r.path : ''}</td>
            <td class="num">${r.timeoutMs ?? '—'} ms</td>
            <td><pre class="json">${json(r.defaultParams ?? {})}</pre></td>
            <td class="small mono">${r.fallback ? JSON.stringify(r.fallback) : '—'}</td>
            <td class="small">${dateTime(r.updatedAt)}</td>
            <td><button type="button" class="small" disabled=${!canAdmin} onClick=${() => edit(r)} aria-label=${`Edit route ${r.key}`}>Edit</button></td>
          </tr>`,
        )}
      </tbody>
    </table></div>
    ${(routes.data ?? []).filter((r) => r.shadow).map((r) => html`<${ShadowCard} key=${r.key} route=${r} canRelease=${may(who.role, 'release')} />`)}

    <form class="card narrow" onSubmit=${submit} novalidate aria-labelledby="route-form-title">
      <h2 id="route-form-title">Add or update a route</h2>
      ${!canAdmin && html`<p class="notice info">${refusal(who.role, 'admin')}</p>`}
      ${errors.general && html`<p class="field-error" role="alert">${errors.general}</p>`}
      <fieldset disabled=${!canAdmin || busy} class="plain-fieldset">
        <div class="cols-2">
          <${Field} name="key" label="Route key" error=${errors.key} hint="Lowercase, as in /v1/routes/recommend">
            ${(id, ep) => html`<input id=${id} class="mono" value=${form.key} onInput=${(e) => set({ key: e.currentTarget.value })} ...${ep} />`}
          <//>
          <${Field} name="upstream" label="Upstream URL" error=${errors.upstream}>
            ${(id, ep) => html`<input id=${id} class="mono" type="url" placeholder="http://127.0.0.1:8082" value=${form.upstream} onInput=${(e) => set({ upstream: e.currentTarget.value })} ...${ep} />`}
          <//>
          <${Field} name="path" label="Upstream path" error=${errors.path}>
            ${(id, ep) => html`<input id=${id} class="mono" value=${form.path} onInput=${(e) => set({ path: e.currentTarget.value })} ...${ep} />`}
          <//>
          <${Field} name="timeoutMs" label="Timeout (ms)" error=${errors.timeoutMs}>
            ${(id, ep) => html`<input id=${id} type="number" min="1" max="120000" value=${form.timeoutMs} onInput=${(e) => set({ timeoutMs: e.currentTarget.value })} ...${ep} />`}
          <//>
        </div>
        <div class="cols-2">
          <${Field} name="defaultParams" label="Default params (JSON object)" error=${errors.defaultParams ?? parseParams(form.defaultParamsText).error}>
            ${(id, ep) => html`<textarea id=${id} class="mono json" rows="4" spellcheck="false" value=${form.defaultParamsText} onInput=${(e) => set({ defaultParamsText: e.currentTarget.value })} ...${ep}></textarea>`}
          <//>
          <${Field} name="fallback" label="Fallback (JSON, optional)" error=${errors.fallback} hint='{"upstream": "http://…"} or {"status": 200, "body": {…}}'>
            ${(id, ep) => html`<textarea id=${id} class="mono json" rows="4" spellcheck="false" value=${form.fallbackText} onInput=${(e) => set({ fallbackText: e.currentTarget.value })} ...${ep}></textarea>`}
          <//>
        </div>
        <${Field} name="shadow" label="Shadow (JSON, optional)" error=${errors.shadow} hint='{"params": {"version": "v3"}, "percent": 10, "upstream"?: "http://…", "compare"?: "predictions", "timeoutMs"?: 5000}'>
          ${(id, ep) => html`<textarea id=${id} class="mono json" rows="3" spellcheck="false" value=${form.shadowText} onInput=${(e) => set({ shadowText: e.currentTarget.value })} ...${ep}></textarea>`}
        <//>
        <div class="form-actions">
          <button type="submit" class="primary">${busy ? 'Saving…' : 'Save route'}</button>
          <button type="button" onClick=${() => { setForm(EMPTY); setErrors({}); }}>Clear</button>
        </div>
      </fieldset>
    </form>
  `;
}
