import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { es } from '../lib/api.js';
import { emptyForm, fieldFor, fieldId, formFromExperiment, parseParams, toDefinition } from '../lib/definition.js';
import { evenSplit } from '../lib/weights.js';
import { href, navigate } from '../lib/router.js';
import { may, refusal } from '../lib/roles.js';
import { errorProps, FieldError } from '../components/field.js';
import { notify } from '../components/notices.js';
import { SplitBar, WeightSlider } from '../components/weights.js';
import { TargetingEditor } from '../components/targeting-editor.js';
import { RolloutEditor } from '../components/rollout-editor.js';

const LABELS = {
  key: 'Key',
  name: 'Name',
  hypothesis: 'Hypothesis',
  route: 'Route',
  layer: 'Layer',
  trafficPercent: 'Traffic',
  allocation: 'Traffic',
  salt: 'Salt',
  targeting: 'Targeting',
  variants: 'Variants',
  overrides: 'Overrides',
  metrics: 'Metrics',
  'metrics.primary': 'Primary metric',
  'metrics.guardrails': 'Guardrails',
  'metrics.secondary': 'Secondary metrics',
  'analysis.correction': 'Multiple-testing correction',
  'analysis.sliceBy': 'Slice results by',
  design: 'Design',
};

/** @param {string} path */
function labelOf(path) {
  const v = /^variants\.(\d+)\.(\w+)/.exec(path);
  if (v) return `Variant ${Number(v[1]) + 1} ${v[2]}`;
  const t = /^targeting\.(\d+)(?:\.(\w+))?/.exec(path);
  if (t) return `Rule ${Number(t[1]) + 1}${t[2] ? ` ${t[2]}` : ''}`;
  return LABELS[path] ?? path;
}

/**
 * Create or edit an experiment. Every field validates in the browser where it can; the service
 * validates again and each of its messages is shown next to the field it names.
 * @param {{who: {role: string | null}, experimentKey?: string}} props
 */
export function ExperimentForm({ who, experimentKey }) {
  const editing = experimentKey !== undefined;
  const [form, setForm] = useState(/** @type {any} */ (null));
  const [status, setStatus] = useState(/** @type {string | null} */ (null));
  const [routes, setRoutes] = useState(/** @type {any[] | null} */ (null));
  const [metrics, setMetrics] = useState(/** @type {any[]} */ ([]));
  const [errors, setErrors] = useState(/** @type {{path: string, message: string}[]} */ ([]));
  const [topError, setTopError] = useState(/** @type {string | null} */ (null));
  const [busy, setBusy] = useState(false);
  const summary = useRef(/** @type {HTMLDivElement | null} */ (null));
  const canEdit = may(who.role, 'edit');

  useEffect(() => {
    let live = true;
    Promise.all([es.routes().catch(() => null), es.metrics().catch(() => []), editing ? es.experiment(experimentKey) : Promise.resolve(null)])
      .then(([r, m, exp]) => {
        if (!live) return;
        setRoutes(r);
        setMetrics(m);
        if (exp) {
          setForm(formFromExperiment(exp));
          setStatus(exp.status);
        } else {
          const f = emptyForm(m.map((x) => x.key));
          if (r?.length === 1) f.route = r[0].key;
          setForm(f);
        }
      })
      .catch((err) => live && setTopError(`Cannot load: ${err.message}`));
    return () => {
      live = false;
    };
  }, [experimentKey]);

  // Paths of rendered fields, so each message finds the closest field that exists.
  const rendered = useMemo(() => {
    if (!form) return new Set();
    const s = new Set(['key', 'name', 'hypothesis', 'route', 'design', 'layer', 'trafficPercent', 'salt', 'targeting', 'variants', 'overrides', 'metrics.primary', 'metrics.secondary', 'metrics.guardrails', 'analysis.correction', 'analysis.sliceBy']);
    form.targeting.forEach((_, i) => ['attribute', 'op', 'value'].forEach((f) => s.add(`targeting.${i}.${f}`)));
    form.variants.forEach((_, i) => ['key', 'name', 'weight', 'params', 'upstream'].forEach((f) => s.add(`variants.${i}.${f}`)));
    if (form.rollout) {
      s.add('rollout').add('rollout.alpha').add('rollout.minUnitsForDecision');
      form.rollout.steps.forEach((_, i) => {
        ['weights', 'minMinutes', 'minUnits'].forEach((f) => s.add(`rollout.steps.${i}.${f}`));
        form.variants.forEach((v) => s.add(`rollout.steps.${i}.weights.${v.key}`));
      });
      form.rollout.guardrails.forEach((_, i) => s.add(`rollout.guardrails.${i}.margin`));
    }
    return s;
  }, [form?.targeting.length, form?.variants.length, form?.rollout?.steps.length, form?.rollout?.guardrails.length, form?.rollout === null]);

  /** @param {string} path */
  const targetOf = (path) => fieldFor(path, rendered) ?? (path.startsWith('allocation') ? 'trafficPercent' : null);
  /** @param {string} path */
  const errorAt = (path) => {
    const hits = errors.filter((e) => targetOf(e.path) === path);
    return hits.length ? hits.map((e) => e.message).join('; ') : undefined;
  };

  if (topError && !form) return html`<p class="notice error" role="alert">${topError}</p>`;
  if (!form) return html`<p aria-busy="true">Loading…</p>`;

  const set = (patch) => setForm({ ...form, ...patch });
  const setVariant = (i, patch) => set({ variants: form.variants.map((v, k) => (k === i ? { ...v, ...patch } : v)) });
  const addVariant = () => {
    const n = form.variants.length;
    set({ variants: [...form.variants, { key: `variant-${n}`, name: '', paramsText: '{}', upstream: '' }], weights: evenSplit(n + 1) });
  };
  const removeVariant = (i) => set({ variants: form.variants.filter((_, k) => k !== i), weights: evenSplit(form.variants.length - 1) });

  const submit = async (e) => {
    e.preventDefault();
    setTopError(null);
    const { definition, errors: local } = toDefinition(form);
    if (Object.keys(local).length) {
      setErrors(Object.entries(local).map(([path, message]) => ({ path, message })));
      queueMicrotask(() => summary.current?.focus());
      return;
    }
    setBusy(true);
    try {
      const saved = editing ? await es.update(experimentKey, definition, form.version) : await es.create(definition);
      setErrors([]);
      notify('success', editing ? `Saved ${saved.key} (version ${saved.version}).` : `Created ${saved.key} as a draft.`);
      navigate('experiments', saved.key);
    } catch (err) {
      const ex = /** @type {import('../lib/api.js').ApiError} */ (err);
      if (ex.fields?.length) setErrors(ex.fields);
      else if (ex.code === 'BUNRYU_ALREADY_EXISTS') setErrors([{ path: 'key', message: ex.message }]);
      else {
        setErrors([]);
        setTopError(
          ex.status === 412
            ? 'Someone changed this experiment since you opened it. Reload to see their version; your edits here are not saved.'
            : ex.status === 403
              ? `Refused by the experiment-service (403): ${ex.message}`
              : ex.message,
        );
      }
      queueMicrotask(() => summary.current?.focus());
    } finally {
      setBusy(false);
    }
  };

  const idOf = fieldId;
  const field = (path, label, input, hint) => {
    const id = idOf(path);
    const err = errorAt(path);
    return html`<div class="field">
      <label for=${id}>${label}</label>
      ${input(id, errorProps(id, err))}
      ${hint && !err && html`<p class="hint">${hint}</p>`}
      <${FieldError} id=${id} error=${err} />
    </div>`;
  };
  const disabled = !canEdit || busy;
  // Once an experiment has run, what decides who gets which variant (route, layer, traffic,
  // salt, variant keys, order and weights) stays put: changing it would reshuffle units
  // mid-experiment. Weights move through the Release tab's ramp, confirmed bucket by bucket.
  const started = editing && status !== null && status !== 'draft';
  const locked = disabled || started;
  const metricOptions = metrics.map((m) => m.key);

  return html`
    <div class="page-head">
      <h1>${editing ? html`Edit <span class="mono">${experimentKey}</span>` : 'New experiment'}</h1>
      <a href=${editing ? href('experiments', experimentKey) : href('experiments')}>Cancel</a>
    </div>
    ${!canEdit && html`<p class="notice info">${refusal(who.role, 'edit')} The form is read-only.</p>`}
    ${started &&
    html`<p class="notice info">This experiment is ${status}: changes apply to live traffic at once. Its route, layer, traffic, salt and variants stay as
      they are so nobody is reshuffled; move weights with the <a href=${href('experiments', experimentKey)}>Release tab's ramp</a>.</p>`}
    <div ref=${summary} tabindex="-1" class="error-summary-anchor">
      ${(errors.length > 0 || topError) &&
      html`<div class="error-summary" role="alert" aria-labelledby="error-summary-title">
        <h2 id="error-summary-title">${errors.length ? `Fix ${errors.length} problem${errors.length > 1 ? 's' : ''}` : 'Not saved'}</h2>
        ${topError && html`<p>${topError}</p>`}
        <ul>
          ${errors.map((e) => {
            const target = targetOf(e.path);
            return html`<li>${target ? html`<a href=${'#' + idOf(target)} onClick=${(ev) => {
              ev.preventDefault();
              document.getElementById(idOf(target))?.focus();
            }}>${labelOf(e.path)}</a>` : labelOf(e.path)}: ${e.message}</li>`;
          })}
        </ul>
      </div>`}
    </div>
    <form class="experiment-form" onSubmit=${submit} novalidate>
      <section class="card">
        <h2>What</h2>
        <div class="cols-2">
          ${field('key', 'Key', (id, ep) => html`<input id=${id} class="mono" value=${form.key} readonly=${editing} disabled=${disabled && !editing} required
            pattern="[a-z0-9][a-z0-9._-]{0,63}" placeholder="ranker-v2" onInput=${(e) => set({ key: e.currentTarget.value })} ...${ep} />`,
            editing ? 'The key cannot change.' : 'Lowercase letters, digits, . _ -; up to 64 characters.')}
          ${field('name', 'Name', (id, ep) => html`<input id=${id} value=${form.name} disabled=${disabled} placeholder="Ranker v2 against v1" onInput=${(e) => set({ name: e.currentTarget.value })} ...${ep} />`)}
        </div>
        ${field('hypothesis', 'Hypothesis', (id, ep) => html`<textarea id=${id} rows="2" disabled=${disabled} placeholder="v2 lifts CTR by 2%" value=${form.hypothesis} onInput=${(e) => set({ hypothesis: e.currentTarget.value })} ...${ep}></textarea>`)}
      </section>

      <section class="card">
        <h2>Where</h2>
        <div class="cols-4">
          ${field('route', 'Route', (id, ep) =>
            routes && routes.length
              ? html`<select id=${id} value=${form.route} disabled=${locked} onChange=${(e) => set({ route: e.currentTarget.value })} ...${ep}>
                  <option value="">Choose a route…</option>
                  ${routes.map((r) => html`<option value=${r.key}>${r.key}</option>`)}
                </select>`
              : html`<input id=${id} class="mono" value=${form.route} disabled=${locked} onInput=${(e) => set({ route: e.currentTarget.value })} ...${ep} />`,
            routes && routes.length === 0 ? 'No routes yet: an admin adds them on the Routes page.' : undefined)}
          ${field('design', 'Design', (id, ep) => html`<select id=${id} value=${form.design} disabled=${locked} onChange=${(e) => set({ design: e.currentTarget.value })} ...${ep}>
              <option value="ab">A/B: each unit sees one variant</option>
              <option value="interleave">Interleaving: both rankings merged per request</option>
            </select>`, form.design === 'interleave' ? 'Two variants on a route whose upstream answers a ranked list; no rollout plan.' : undefined)}
          ${field('layer', 'Layer', (id, ep) => html`<input id=${id} class="mono" value=${form.layer} disabled=${locked} placeholder=${form.key || 'defaults to the key'}
            onInput=${(e) => set({ layer: e.currentTarget.value })} ...${ep} />`, 'Experiments sharing a layer get disjoint traffic.')}
          ${field('trafficPercent', 'Traffic (% of the layer)', (id, ep) => html`<div class="traffic">
              <input type="range" min="1" max="100" step="1" value=${Number(form.trafficPercent) || 0} disabled=${locked} aria-label="Traffic slider"
                onInput=${(e) => set({ trafficPercent: e.currentTarget.value })} />
              <input id=${id} type="number" min="0.01" max="100" step="0.01" value=${form.trafficPercent} disabled=${locked} class="weight-number"
                onInput=${(e) => set({ trafficPercent: e.currentTarget.value })} ...${ep} />
            </div>`,
            form.allocation ? `Allocated buckets [${form.allocation.start}, ${form.allocation.end}) of the layer.` : 'The service allocates a free range of the layer.')}
          ${field('salt', 'Salt', (id, ep) => html`<input id=${id} class="mono" value=${form.salt} disabled=${locked} placeholder="(none)" onInput=${(e) => set({ salt: e.currentTarget.value })} ...${ep} />`,
            'Changing it reshuffles units.')}
        </div>
        <${TargetingEditor} rules=${form.targeting} disabled=${disabled} errorAt=${errorAt} onChange=${(targeting) => set({ targeting })} />
      </section>

      <section class="card">
        <div class="section-head">
          <h2 id="variants-title">Variants</h2>
          <div class="toolbar">
            <button type="button" disabled=${locked} onClick=${() => set({ weights: evenSplit(form.variants.length) })}>Split evenly</button>
            <button type="button" disabled=${locked || form.variants.length >= 20} onClick=${addVariant}>Add variant</button>
          </div>
        </div>
        <p class="muted small">The first variant is the control. Weights always total 100%: moving one slider rescales the others.</p>
        <${SplitBar} keys=${form.variants.map((v) => v.key || '?')} weights=${form.weights} />
        <div id=${idOf('variants')} tabindex="-1"><${FieldError} id=${idOf('variants')} error=${errorAt('variants')} /></div>
        <div class="variants">
          ${form.variants.map((v, i) => {
            const p = (f) => `variants.${i}.${f}`;
            const paramsCheck = parseParams(v.paramsText);
            const paramsErr = errorAt(p('params')) ?? paramsCheck.error;
            const paramsId = idOf(p('params'));
            return html`<fieldset class="variant" key=${i}>
              <legend>Variant ${i + 1}${i === 0 ? ' (control)' : ''}</legend>
              <div class="cols-2">
                ${field(p('key'), 'Key', (id, ep) => html`<input id=${id} class="mono" value=${v.key} disabled=${locked} onInput=${(e) => setVariant(i, { key: e.currentTarget.value })} ...${ep} />`)}
                ${field(p('name'), 'Name', (id, ep) => html`<input id=${id} value=${v.name} disabled=${disabled} placeholder="optional" onInput=${(e) => setVariant(i, { name: e.currentTarget.value })} ...${ep} />`)}
              </div>
              <${WeightSlider} id=${idOf(p('weight'))} label=${`Weight of ${v.key || `variant ${i + 1}`} (%)`} index=${i} weights=${form.weights}
                disabled=${locked} error=${errorAt(p('weight'))} onChange=${(weights) => set({ weights })} />
              <div class="field">
                <label for=${paramsId}>Parameters (JSON object)</label>
                <textarea id=${paramsId} class="mono json" rows="3" spellcheck="false" disabled=${disabled} ...${errorProps(paramsId, paramsErr)}
                  value=${v.paramsText} onInput=${(e) => setVariant(i, { paramsText: e.currentTarget.value })}></textarea>
                ${paramsErr ? html`<${FieldError} id=${paramsId} error=${paramsErr} />` : html`<p class="hint ok">Valid JSON object · ${Object.keys(paramsCheck.value ?? {}).length} parameter(s)</p>`}
              </div>
              ${field(p('upstream'), 'Upstream override (optional)', (id, ep) => html`<input id=${id} class="mono" type="url" value=${v.upstream} disabled=${disabled}
                placeholder="http://model-v2:8082" onInput=${(e) => setVariant(i, { upstream: e.currentTarget.value })} ...${ep} />`)}
              <button type="button" class="icon" disabled=${locked || form.variants.length <= 2} onClick=${() => removeVariant(i)}
                aria-label=${`Remove variant ${v.key || i + 1}`}>Remove variant</button>
            </fieldset>`;
          })}
        </div>
      </section>

      <section class="card">
        <h2>Measure</h2>
        <div class="cols-2">
          ${field('metrics.primary', 'Primary metric', (id, ep) => html`<select id=${id} value=${form.primary} disabled=${disabled} onChange=${(e) => set({ primary: e.currentTarget.value })} ...${ep}>
              <option value="">(none)</option>
              ${metricOptions.map((k) => html`<option value=${k}>${k}</option>`)}
            </select>`, 'The decision metric, shown first on the results.')}
          <fieldset class="field" id=${idOf('metrics.secondary')} tabindex="-1">
            <legend>Secondary metrics</legend>
            <div class="checks">
              ${metricOptions.map(
                (k) => html`<label class="check"><input type="checkbox" checked=${form.secondary.includes(k)} disabled=${disabled}
                  onChange=${(e) => set({ secondary: e.currentTarget.checked ? [...form.secondary, k] : form.secondary.filter((g) => g !== k) })} /> ${k}</label>`,
              )}
            </div>
            <${FieldError} id=${idOf('metrics.secondary')} error=${errorAt('metrics.secondary')} />
          </fieldset>
          <fieldset class="field" id=${idOf('metrics.guardrails')} tabindex="-1">
            <legend>Guardrail metrics</legend>
            <div class="checks">
              ${metricOptions.map(
                (k) => html`<label class="check"><input type="checkbox" checked=${form.guardrails.includes(k)} disabled=${disabled}
                  onChange=${(e) => set({ guardrails: e.currentTarget.checked ? [...form.guardrails, k] : form.guardrails.filter((g) => g !== k) })} /> ${k}</label>`,
              )}
            </div>
            <${FieldError} id=${idOf('metrics.guardrails')} error=${errorAt('metrics.guardrails')} />
          </fieldset>
          ${field('analysis.correction', 'Multiple-testing correction', (id, ep) => html`<select id=${id} value=${form.correction} disabled=${disabled} onChange=${(e) => set({ correction: e.currentTarget.value })} ...${ep}>
              <option value="none">None</option>
              <option value="holm">Holm (family-wise error)</option>
              <option value="bh">Benjamini–Hochberg (false discovery rate)</option>
            </select>`, 'Over the primary and secondary metrics × treatments; guardrails are not corrected.')}
          ${field('analysis.sliceBy', 'Slice results by', (id, ep) => html`<input id=${id} class="mono" disabled=${disabled} placeholder="country, platform"
              value=${form.sliceByText} onInput=${(e) => set({ sliceByText: e.currentTarget.value })} ...${ep} />`, 'Request attributes, comma-separated (up to 5): each unit counts in the value of its first exposure, and the slices are corrected together.')}
        </div>
        <details>
          <summary>Overrides (QA units forced into a variant)</summary>
          ${field('overrides', 'One per line: unit-id = variant', (id, ep) => html`<textarea id=${id} class="mono" rows="3" disabled=${disabled} placeholder="qa-user-1 = treatment"
            value=${form.overridesText} onInput=${(e) => set({ overridesText: e.currentTarget.value })} ...${ep}></textarea>`, 'Forced units are never analysed.')}
        </details>
      </section>

      <${RolloutEditor} rollout=${form.rollout} keys=${form.variants.map((v) => v.key)} metricOptions=${metricOptions} disabled=${disabled || (started && !form.rollout)}
        onChange=${(r) => set({ rollout: r })} errorAt=${errorAt} />

      <div class="form-actions">
        <button type="submit" class="primary" disabled=${disabled}>${busy ? 'Saving…' : editing ? 'Save changes' : 'Create experiment'}</button>
        <a href=${editing ? href('experiments', experimentKey) : href('experiments')}>Cancel</a>
      </div>
    </form>
  `;
}
