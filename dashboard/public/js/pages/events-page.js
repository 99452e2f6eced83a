import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { agg, es } from '../lib/api.js';
import { age, num, pct } from '../lib/format.js';
import { may, refusal } from '../lib/roles.js';
import { useAsync } from '../lib/use-async.js';
import { errorsByField, Field } from '../components/simple-form.js';
import { notify } from '../components/notices.js';

// SPEC §16: the event catalogue. Editors propose declarations, reviewers approve them; the live
// volume comes from the aggregator (events per minute over the last hour, last seen, and the
// share a gateway in `warn` marked as undeclared or invalid).

/** @typedef {{name: string, type: string, required: boolean, enumText: string}} AttrRow */

const EMPTY = { type: '', description: '', owner: '', unit: '', attributes: /** @type {AttrRow[]} */ ([]) };
const KNOWN = ['type', 'description', 'owner', 'attributes', 'value'];

/** @param {any} spec */
function attributeText(spec) {
  const base = spec.enum ? spec.enum.map((v) => JSON.stringify(v)).join(' | ') : spec.type;
  return spec.required ? `${base} (required)` : base;
}

/** @param {{declaration: any}} props */
function SchemaCell({ declaration: d }) {
  const attributes = Object.entries(d.attributes ?? {});
  return html`<ul class="plain small schema">
    ${attributes.map(([name, spec]) => html`<li><code>${name}</code>: ${attributeText(spec)}</li>`)}
    ${d.value ? html`<li><code>value</code>: number in ${d.value.unit}</li>` : ''}
    ${attributes.length === 0 && !d.value ? html`<li class="muted">no attributes</li>` : ''}
  </ul>`;
}

/** @param {{declaration: any}} props */
function StatusCell({ declaration: d }) {
  if (d.status === 'approved') return html`<span class="badge status-running" data-status="approved">Approved</span><div class="small muted">by ${d.approvedBy}</div>`;
  return html`<span class="badge status-paused" data-status="proposed">${d.approved ? 'Change proposed' : 'Proposed'}</span><div class="small muted">by ${d.proposedBy}</div>`;
}

/** @param {AttrRow[]} rows */
function attributesOf(rows) {
  /** @type {Record<string, any>} */
  const out = {};
  for (const r of rows) {
    if (!r.name.trim()) continue;
    /** @type {any} */
    const spec = { type: r.type };
    if (r.required) spec.required = true;
    const values = r.enumText
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean);
    if (values.length) spec.enum = r.type === 'number' ? values.map(Number) : values;
    out[r.name.trim()] = spec;
  }
  return out;
}

/** @param {{who: {role: string | null}}} props */
export function EventsPage({ who }) {
  const events = useAsync(() => es.events(), []);
  const volume = useAsync(() => agg.eventVolume(), [], { intervalMs: 10_000 });
  const [form, setForm] = useState(EMPTY);
  const [errors, setErrors] = useState(/** @type {Record<string, string>} */ ({}));
  const [busy, setBusy] = useState(false);
  const canPropose = may(who.role, 'edit');
  const canReview = may(who.role, 'review');
  const set = (patch) => setForm({ ...form, ...patch });
  const setRow = (i, patch) => set({ attributes: form.attributes.map((r, j) => (j === i ? { ...r, ...patch } : r)) });

  /** @type {Map<string, any>} */
  const live = new Map((volume.data?.types ?? []).map((v) => [v.type, v]));
  const declared = new Set((events.data ?? []).map((d) => d.type));
  const undeclared = events.data ? (volume.data?.types ?? []).filter((v) => !declared.has(v.type) && v.events > 0) : [];

  const edit = (d) => {
    setErrors({});
    setForm({
      type: d.type,
      description: d.description,
      owner: d.owner,
      unit: d.value?.unit ?? '',
      attributes: Object.entries(d.attributes ?? {}).map(([name, s]) => ({ name, type: s.type, required: !!s.required, enumText: (s.enum ?? []).join(', ') })),
    });
    document.getElementById('f-type')?.focus();
  };

  const submit = async (e) => {
    e.preventDefault();
    const type = form.type.trim();
    if (!type) return setErrors({ type: 'enter an event type' });
    /** @type {any} */
    const body = { description: form.description, owner: form.owner, attributes: attributesOf(form.attributes) };
    if (form.unit.trim()) body.value = { unit: form.unit.trim() };
    setBusy(true);
    try {
      const d = await es.proposeEvent(type, body);
      notify('success', `Proposed ${type}: status ${d.status}.`);
      setForm(EMPTY);
      setErrors({});
      events.reload();
    } catch (err) {
      setErrors(err.fields?.length ? errorsByField(err.fields, KNOWN) : { general: err.status === 403 ? `Refused (403): ${err.message}` : err.message });
    } finally {
      setBusy(false);
    }
  };

  const approve = async (d) => {
    try {
      await es.approveEvent(d.type, d.version);
      notify('success', `Approved ${d.type}.`);
    } catch (err) {
      notify('error', err.status === 412 ? `${d.type} changed since you loaded it: review it again.` : `Cannot approve ${d.type}: ${err.message}`);
    }
    events.reload();
  };

  return html`
    <div class="page-head"><h1>Event catalogue</h1></div>
    <p class="muted">Every behaviour event clients send: what it means, who owns it, its attributes. A new or changed declaration is proposed until a reviewer approves it; gateways check events against the approved ones, and client teams can fetch typed definitions from <code>/v1/events/catalogue.d.ts</code> on the experiment-service.</p>
    ${events.error && html`<p class="notice error" role="alert">Cannot load the catalogue: ${events.error.message}</p>`}
    ${volume.error && html`<p class="notice info">Live volume unavailable: ${volume.error.message}</p>`}
    <div class="table-scroll"><table class="grid" data-testid="events">
      <caption class="sr-only">Declared events</caption>
      <thead><tr>
        <th scope="col">Event</th><th scope="col">Description</th><th scope="col">Owner</th><th scope="col">Schema</th><th scope="col">Status</th>
        <th scope="col" class="num">Per minute</th><th scope="col">Last seen</th><th scope="col" class="num">Invalid</th><th scope="col"><span class="sr-only">Actions</span></th>
      </tr></thead>
      <tbody>
        ${(events.data ?? []).map((d) => {
          const v = live.get(d.type);
          return html`<tr data-event=${d.type}>
            <th scope="row" class="mono">${d.type}</th>
            <td>${d.description}</td>
            <td>${d.owner}</td>
            <td><${SchemaCell} declaration=${d} /></td>
            <td><${StatusCell} declaration=${d} /></td>
            <td class="num" data-testid="per-minute">${v ? num(Math.round(v.perMinute * 100) / 100) : '—'}</td>
            <td data-testid="last-seen">${v?.lastSeen ? `${age(v.lastSeen)} ago` : 'never'}</td>
            <td class="num" data-testid="share-invalid">${v && v.shareInvalid !== null ? pct(v.shareInvalid) : '—'}</td>
            <td class="actions">
              ${d.status === 'proposed'
                ? html`<button type="button" class="small primary" disabled=${!canReview} title=${canReview ? undefined : refusal(who.role, 'review')} onClick=${() => approve(d)} aria-label=${`Approve ${d.type}`}>Approve</button>`
                : ''}
              <button type="button" class="small" disabled=${!canPropose} onClick=${() => edit(d)} aria-label=${`Edit ${d.type}`}>Edit</button>
            </td>
          </tr>`;
        })}
        ${events.data && events.data.length === 0 ? html`<tr><td colspan="9" class="muted">No event is declared yet.</td></tr>` : ''}
      </tbody>
    </table></div>
    ${undeclared.length > 0 &&
    html`<p class="notice info" data-testid="undeclared">Seen in the last hour but not declared:
      ${undeclared.map((v, i) => html`${i ? ', ' : ' '}<code>${v.type}</code> (${num(v.events)} event${v.events === 1 ? '' : 's'})`)}. Declare them, or fix the clients that send them.</p>`}

    <form class="card narrow" onSubmit=${submit} novalidate aria-labelledby="event-form-title">
      <h2 id="event-form-title">Propose an event</h2>
      ${!canPropose && html`<p class="notice info">${refusal(who.role, 'edit')}</p>`}
      ${errors.general && html`<p class="field-error" role="alert">${errors.general}</p>`}
      <fieldset disabled=${!canPropose || busy} class="plain-fieldset">
        <div class="cols-2">
          <${Field} name="type" label="Event type" error=${errors.type} hint="lower case: click, add_to_cart">
            ${(id, ep) => html`<input id=${id} class="mono" value=${form.type} placeholder="click" onInput=${(e) => set({ type: e.currentTarget.value })} ...${ep} />`}
          <//>
          <${Field} name="owner" label="Owner" error=${errors.owner}>
            ${(id, ep) => html`<input id=${id} value=${form.owner} placeholder="growth-team" onInput=${(e) => set({ owner: e.currentTarget.value })} ...${ep} />`}
          <//>
        </div>
        <${Field} name="description" label="Description" error=${errors.description}>
          ${(id, ep) => html`<input id=${id} value=${form.description} onInput=${(e) => set({ description: e.currentTarget.value })} ...${ep} />`}
        <//>
        <fieldset class="plain-fieldset">
          <legend>Attributes</legend>
          ${errors.attributes && html`<p class="field-error" role="alert">${errors.attributes}</p>`}
          ${form.attributes.map(
            (r, i) => html`<div class="cols-4 attr-row" data-attr-row=${i}>
              <input aria-label=${`Attribute ${i + 1} name`} class="mono" value=${r.name} placeholder="position" onInput=${(e) => setRow(i, { name: e.currentTarget.value })} />
              <select aria-label=${`Attribute ${i + 1} type`} value=${r.type} onChange=${(e) => setRow(i, { type: e.currentTarget.value })}>
                <option value="string">string</option><option value="number">number</option><option value="boolean">boolean</option>
              </select>
              <input aria-label=${`Attribute ${i + 1} allowed values`} value=${r.enumText} placeholder="allowed values, comma-separated (optional)" onInput=${(e) => setRow(i, { enumText: e.currentTarget.value })} />
              <label class="inline"><input type="checkbox" checked=${r.required} onChange=${(e) => setRow(i, { required: e.currentTarget.checked })} /> required</label>
              <button type="button" class="small" aria-label=${`Remove attribute ${i + 1}`} onClick=${() => set({ attributes: form.attributes.filter((_, j) => j !== i) })}>Remove</button>
            </div>`,
          )}
          <button type="button" class="small" onClick=${() => set({ attributes: [...form.attributes, { name: '', type: 'string', required: false, enumText: '' }] })}>Add attribute</button>
        </fieldset>
        <${Field} name="value.unit" label="Value unit (optional)" error=${errors.value} hint="set when the event carries a value: seconds, JPY">
          ${(id, ep) => html`<input id=${id} value=${form.unit} onInput=${(e) => set({ unit: e.currentTarget.value })} ...${ep} />`}
        <//>
        <div class="form-actions">
          <button type="submit" class="primary">${busy ? 'Proposing…' : 'Propose'}</button>
          <button type="button" onClick=${() => { setForm(EMPTY); setErrors({}); }}>Clear</button>
        </div>
      </fieldset>
    </form>
  `;
}
