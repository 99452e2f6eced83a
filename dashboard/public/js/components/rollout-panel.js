import { html } from '../lib/html.js';
import { es } from '../lib/api.js';
import { may, refusal } from '../lib/roles.js';
import { useAsync } from '../lib/use-async.js';
import { notify } from './notices.js';

/** @param {number | null | undefined} x @param {boolean} relative */
const fmt = (x, relative) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : relative ? `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%` : `${x >= 0 ? '+' : ''}${x.toPrecision(3)}`);

/**
 * One guardrail drawn against its margin: the estimate (dot), the one-sided always-valid bound
 * on the harmful side (bar from the bound towards the estimate), zero and the margin (lines).
 * Harm is declared when the bound crosses the margin.
 * @param {{g: any}} props
 */
export function GuardrailChart({ g }) {
  const W = 320;
  const H = 34;
  const limit = g.harm === 'increase' ? g.margin : -g.margin;
  const xs = [0, limit, g.estimate, g.bound].filter((v) => typeof v === 'number' && Number.isFinite(v));
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const pad = (hi - lo || (g.relative ? 0.1 : 0.01)) * 0.15;
  const x = (/** @type {number} */ v) => 8 + ((v - (lo - pad)) / (hi - lo + 2 * pad)) * (W - 16);
  const drawn = typeof g.estimate === 'number' && typeof g.bound === 'number';
  const label = `${g.metric} in ${g.variant}: estimate ${fmt(g.estimate, g.relative)}, bound ${fmt(g.bound, g.relative)}, margin ${fmt(limit, g.relative)}, ${g.verdict}`;
  return html`
    <svg class=${`guardrail-chart verdict-${g.verdict}`} width=${W} height=${H} viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${label}>
      <line class="axis" x1="8" x2=${W - 8} y1=${H / 2} y2=${H / 2} />
      <line class="zero" x1=${x(0)} x2=${x(0)} y1="4" y2=${H - 4} />
      <line class="margin" x1=${x(limit)} x2=${x(limit)} y1="2" y2=${H - 2} />
      ${drawn && html`<rect class="bound" x=${Math.min(x(g.bound), x(g.estimate))} width=${Math.abs(x(g.estimate) - x(g.bound))} y=${H / 2 - 5} height="10" />`}
      ${drawn && html`<circle class="estimate" cx=${x(g.estimate)} cy=${H / 2} r="4" />`}
    </svg>
  `;
}

/**
 * The autopilot's view of a guarded rollout (SPEC §10): the steps with the current one marked,
 * each guardrail's estimate and bound against its margin, the decision log, and the buttons to
 * take the rollout over or hand it back.
 * @param {{experiment: any, who: {role: string | null}, onChanged: () => void}} props
 */
export function RolloutPanel({ experiment: e, who, onChanged }) {
  const view = useAsync(() => es.rollout(e.key), [e.key, e.version], { intervalMs: 2000 });
  const v = view.data;
  const canRelease = may(who.role, 'release');
  const hand = async (/** @type {'pause' | 'resume'} */ mode) => {
    await es.autopilot(e.key, mode, e.version);
    notify('success', mode === 'pause' ? 'You drive the rollout now; the autopilot only reports' : 'The autopilot drives the rollout again');
    onChanged();
  };
  if (!v) return html`<section class="card"><h3>Guarded rollout</h3><p class="muted">${view.error ? `Cannot load the rollout: ${view.error.message}` : 'Loading…'}</p></section>`;
  const active = v.state.autopilot === 'active';
  const live = v.status === 'running' || v.status === 'paused';
  const last = v.lastDecision?.decision;
  return html`
    <section class="card rollout" aria-labelledby="rollout-title">
      <h3 id="rollout-title">Guarded rollout</h3>
      <p>
        <span class=${`badge ${!live ? '' : active ? 'ok' : 'warn'}`}>${!live ? `done: ${v.status.replace('_', ' ')}` : active ? 'autopilot driving' : 'a person drives'}</span>
        ${last && html` <span class="small">Last decision: <strong>${last.action}</strong> (${last.reason}) — ${last.message}</span>`}
      </p>
      <ol class="steps" aria-label="Rollout steps">
        ${v.plan.steps.map((s, i) => {
          const state = i < v.state.step ? 'done' : i === v.state.step ? (live ? 'current' : 'stopped') : 'ahead';
          return html`<li class=${`step step-${state}`} aria-current=${state === 'current' ? 'step' : undefined}>
            <strong>Step ${i + 1}</strong> ${Object.entries(s.weights).map(([k, w]) => `${k} ${w}%`).join(' · ')}${' '}
            <span class="small muted">≥ ${s.minMinutes} min, ≥ ${s.minUnits} units per variant</span>
            ${state === 'current' && html`<span class="small"> — since ${new Date(v.state.stepStartedAt).toLocaleTimeString()}</span>`}
          </li>`;
        })}
      </ol>
      <h4>Guardrails <span class="small muted">one-sided, always valid, each at α/k = ${(v.plan.alpha / Math.max(1, v.plan.guardrails.length)).toPrecision(2)}</span></h4>
      ${v.guardrails.length === 0
        ? html`<p class="muted small">Not evaluated yet${v.evaluatedAt ? '' : ' (the autopilot evaluates every few seconds once the rollout runs)'}.</p>`
        : html`<table class="guardrails">
            <thead><tr><th>metric</th><th>variant</th><th>estimate</th><th>bound</th><th>margin</th><th>units</th><th>verdict</th><th>chart</th></tr></thead>
            <tbody>
              ${v.guardrails.map(
                (g) => html`<tr class=${`verdict-${g.verdict}`}>
                  <td>${g.metric}</td><td>${g.variant}</td><td>${fmt(g.estimate, g.relative)}</td><td>${fmt(g.bound, g.relative)}</td>
                  <td>${g.harm === 'increase' ? '≤ ' : '≥ '}${fmt(g.harm === 'increase' ? g.margin : -g.margin, g.relative)}</td>
                  <td>${g.units.treatment} / ${g.units.control}</td><td><strong>${g.verdict}</strong></td><td><${GuardrailChart} g=${g} /></td>
                </tr>`,
              )}
            </tbody>
          </table>`}
      <div class="toolbar">
        <button type="button" disabled=${!canRelease || !active || v.status !== 'running'} onClick=${() => hand('pause').catch((err) => notify('error', err.message))}
          title=${canRelease ? '' : refusal(who.role, 'release')}>Take over (pause the autopilot)</button>
        <button type="button" disabled=${!canRelease || active || v.status !== 'running'} onClick=${() => hand('resume').catch((err) => notify('error', err.message))}>Hand back to the autopilot</button>
      </div>
      <h4>Decision log</h4>
      ${v.decisions.length === 0
        ? html`<p class="muted small">The autopilot has not acted yet.</p>`
        : html`<table class="decisions">
            <thead><tr><th>when</th><th>action</th><th>reason</th><th>why</th></tr></thead>
            <tbody>
              ${v.decisions.map((d) => html`<tr><td>${new Date(d.at).toLocaleString()}</td><td>${d.action}</td><td>${d.decision?.reason ?? ''}</td><td class="small">${d.decision?.message ?? ''}</td></tr>`)}
            </tbody>
          </table>`}
    </section>
  `;
}
