import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { es } from '../lib/api.js';
import { may, refusal } from '../lib/roles.js';
import { useAsync } from '../lib/use-async.js';
import { errorsByField, Field } from '../components/simple-form.js';
import { notify } from '../components/notices.js';

const EMPTY = { key: '', type: 'proportion', event: '', numEvent: '', numField: '', denEvent: '', denField: '', description: '' };
const KNOWN = ['key', 'type', 'event', 'numerator', 'denominator', 'description'];

/** @param {any} m */
function definitionText(m) {
  if (m.key === 'error_rate' && m.builtIn) return 'share of units with an exposure answered ≥ 500 (gateway)';
  if (m.key === 'latency_ms' && m.builtIn) return "per-unit mean of the gateway's exposure latency";
  const ref = (r) => (r?.field === 'value' ? `sum of ${r.event} values` : `count of ${r?.event}`);
  if (m.type === 'ratio') return `${ref(m.numerator)} ÷ ${ref(m.denominator)}`;
  if (m.type === 'proportion') return m.event ? `share of units with ≥ 1 ${m.event}` : 'share of units';
  if (m.type === 'mean') return m.event ? `per-unit sum of ${m.event} values` : 'per-unit mean';
  return m.type;
}

/** @param {{who: {role: string | null}}} props */
export function MetricsPage({ who }) {
  const metrics = useAsync(() => es.metrics(), []);
  const [form, setForm] = useState(EMPTY);
  const [errors, setErrors] = useState(/** @type {Record<string, string>} */ ({}));
  const [busy, setBusy] = useState(false);
  const canAdmin = may(who.role, 'admin');
  const set = (patch) => setForm({ ...form, ...patch });

  const edit = (m) => {
    setErrors({});
    setForm({
      ...EMPTY,
      key: m.key,
      type: m.type,
      event: m.event ?? '',
      numEvent: m.numerator?.event ?? '',
      numField: m.numerator?.field ?? '',
      denEvent: m.denominator?.event ?? '',
      denField: m.denominator?.field ?? '',
      description: m.description ?? '',
    });
    document.getElementById('f-key')?.focus();
  };

  const submit = async (e) => {
    e.preventDefault();
    const ref = (event, field) => (field ? { event: event.trim(), field } : { event: event.trim() });
    const body =
      form.type === 'ratio'
        ? { type: 'ratio', numerator: ref(form.numEvent, form.numField), denominator: ref(form.denEvent, form.denField) }
        : { type: form.type, event: form.event.trim() };
    if (form.description.trim()) body.description = form.description.trim();
    if (!form.key.trim()) return setErrors({ key: 'enter a key' });
    setBusy(true);
    try {
      await es.putMetric(form.key.trim(), body);
      notify('success', `Saved metric ${form.key.trim()}.`);
      setForm(EMPTY);
      setErrors({});
      metrics.reload();
    } catch (err) {
      setErrors(err.fields?.length ? errorsByField(err.fields, KNOWN) : { general: err.status === 403 ? `Refused (403): ${err.message}` : err.message });
    } finally {
      setBusy(false);
    }
  };

  const eventRef = (prefix, label) => html`<fieldset class="plain-fieldset ref">
    <legend>${label}</legend>
    <${Field} name=${`${prefix}.event`} label="Event type" error=${errors[prefix]}>
      ${(id, ep) => html`<input id=${id} class="mono" value=${form[prefix === 'numerator' ? 'numEvent' : 'denEvent']} placeholder=${prefix === 'numerator' ? 'click' : 'impression'}
        onInput=${(e) => set({ [prefix === 'numerator' ? 'numEvent' : 'denEvent']: e.currentTarget.value })} ...${ep} />`}
    <//>
    <${Field} name=${`${prefix}.field`} label="Aggregate">
      ${(id) => html`<select id=${id} value=${form[prefix === 'numerator' ? 'numField' : 'denField']}
        onChange=${(e) => set({ [prefix === 'numerator' ? 'numField' : 'denField']: e.currentTarget.value })}>
        <option value="">count events</option><option value="value">sum their values</option>
      </select>`}
    <//>
  </fieldset>`;

  return html`
    <div class="page-head"><h1>Metric catalogue</h1></div>
    <p class="muted">Metrics are computed from events after each unit's first exposure. <code>error_rate</code> and <code>latency_ms</code> are built in and always available as guardrails.</p>
    ${metrics.error && html`<p class="notice error" role="alert">Cannot load metrics: ${metrics.error.message}</p>`}
    <div class="table-scroll"><table class="grid" data-testid="metrics">
      <caption class="sr-only">Metrics</caption>
      <thead><tr><th scope="col">Metric</th><th scope="col">Type</th><th scope="col">Definition</th><th scope="col">Description</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>
        ${(metrics.data ?? []).map(
          (m) => html`<tr data-metric=${m.key}>
            <th scope="row" class="mono">${m.key}${m.builtIn ? html` <span class="tag">built in</span>` : ''}</th>
            <td>${m.type}</td>
            <td>${definitionText(m)}</td>
            <td class="small">${m.description ?? ''}</td>
            <td>${m.builtIn ? '' : html`<button type="button" class="small" disabled=${!canAdmin} onClick=${() => edit(m)} aria-label=${`Edit metric ${m.key}`}>Edit</button>`}</td>
          </tr>`,
        )}
      </tbody>
    </table></div>

    <form class="card narrow" onSubmit=${submit} novalidate aria-labelledby="metric-form-title">
      <h2 id="metric-form-title">Add or update a metric</h2>
      ${!canAdmin && html`<p class="notice info">${refusal(who.role, 'admin')}</p>`}
      ${errors.general && html`<p class="field-error" role="alert">${errors.general}</p>`}
      <fieldset disabled=${!canAdmin || busy} class="plain-fieldset">
        <div class="cols-2">
          <${Field} name="key" label="Metric key" error=${errors.key}>
            ${(id, ep) => html`<input id=${id} class="mono" value=${form.key} placeholder="ctr" onInput=${(e) => set({ key: e.currentTarget.value })} ...${ep} />`}
          <//>
          <${Field} name="type" label="Type" error=${errors.type}>
            ${(id, ep) => html`<select id=${id} value=${form.type} onChange=${(e) => set({ type: e.currentTarget.value })} ...${ep}>
              <option value="proportion">proportion: share of units with the event</option>
              <option value="mean">mean: per-unit sum of the event's values</option>
              <option value="ratio">ratio: one event's total over another's</option>
            </select>`}
          <//>
        </div>
        ${form.type === 'ratio'
          ? html`<div class="cols-2">${eventRef('numerator', 'Numerator')}${eventRef('denominator', 'Denominator')}</div>`
          : html`<${Field} name="event" label="Event type" error=${errors.event} hint="e.g. click, conversion, dwell">
              ${(id, ep) => html`<input id=${id} class="mono" value=${form.event} onInput=${(e) => set({ event: e.currentTarget.value })} ...${ep} />`}
            <//>`}
        <${Field} name="description" label="Description (optional)" error=${errors.description}>
          ${(id, ep) => html`<input id=${id} value=${form.description} onInput=${(e) => set({ description: e.currentTarget.value })} ...${ep} />`}
        <//>
        <div class="form-actions">
          <button type="submit" class="primary">${busy ? 'Saving…' : 'Save metric'}</button>
          <button type="button" onClick=${() => { setForm(EMPTY); setErrors({}); }}>Clear</button>
        </div>
      </fieldset>
    </form>
  `;
}
