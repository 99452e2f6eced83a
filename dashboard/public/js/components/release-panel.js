import { useEffect, useMemo, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { es } from '../lib/api.js';
import { bucketShare, rangeText } from '../lib/buckets.js';
import { signedPct, verdict } from '../lib/format.js';
import { rampImpact, scope } from '../lib/impact.js';
import { allowed, allowedText } from '../lib/lifecycle.js';
import { may, refusal } from '../lib/roles.js';
import { toHundredths, toPercent } from '../lib/weights.js';
import { ConfirmDialog } from './confirm-dialog.js';
import { notify } from './notices.js';
import { SplitBar, WeightSlider } from './weights.js';

/** @param {{e: any}} props */
function Scope({ e }) {
  const s = scope(e);
  return html`<p>Scope: units on route <code>${e.route}</code> ${s.targeting} whose bucket in layer <code>${s.layer}</code> is in the
    experiment's allocation <strong>${s.allocationText}</strong> (${s.share} of the layer).</p>`;
}

/**
 * Ramp, promote and roll back (SPEC §1 step 10), each confirmed in a dialog that names the
 * buckets it moves. The parent keys it by the experiment's version, so a new version starts a
 * fresh form at mount (an effect resetting it would run after paint and could undo typing).
 * @param {{experiment: any, results: any, who: {role: string | null}, onChanged: () => void}} props
 */
export function ReleasePanel({ experiment: e, results, who, onChanged }) {
  const canRelease = may(who.role, 'release');
  const current = e.variants.map((v) => toHundredths(v.weight));
  const [weights, setWeights] = useState(current);
  const [dialog, setDialog] = useState(/** @type {null | 'ramp' | 'promote' | 'rollback'} */ (null));
  const [promoteKey, setPromoteKey] = useState(e.variants[1]?.key ?? e.variants[0].key);
  const [route, setRoute] = useState(/** @type {any} */ (null));

  useEffect(() => {
    es.routes()
      .then((rs) => setRoute(rs.find((r) => r.key === e.route) ?? null))
      .catch(() => setRoute(null));
  }, [e.route]);

  const newWeights = Object.fromEntries(e.variants.map((v, i) => [v.key, toPercent(weights[i] ?? 0)]));
  const impact = useMemo(() => rampImpact(e, newWeights), [e, weights.join(',')]);
  const changed = weights.some((w, i) => w !== current[i]);
  const s = scope(e);
  const promoted = e.variants.find((v) => v.key === promoteKey);
  const guardrails = (results?.metrics ?? []).filter((m) => (e.metrics?.guardrails ?? []).includes(m.metric) || m.metric === e.metrics?.primary);
  // The role's refusal is said once at the top; each section only says why its status forbids it.
  const statusWhy = (action) => (canRelease && !allowed(action, e.status) ? `The experiment is ${e.status.replace('_', ' ')}; ${action} is ${allowedText(action)}.` : null);
  const disabledWhy = (action) => (!canRelease ? refusal(who.role, 'release') : !allowed(action, e.status) ? `The experiment is ${e.status.replace('_', ' ')}; ${action} is ${allowedText(action)}.` : null);

  const act = async (what, call) => {
    try {
      await call();
    } catch (err) {
      if (/** @type {any} */ (err)?.status === 412) onChanged(); // show the newer version
      throw err;
    }
    notify('success', what);
    onChanged();
  };

  return html`
    <div class="release">
      ${!canRelease && html`<p class="notice info">${refusal(who.role, 'release')}</p>`}
      <section class="card" aria-labelledby="ramp-title">
        <h3 id="ramp-title">Ramp weights</h3>
        <p class="muted small">Variant ranges stay in variant order, so moving weight from one variant to the next only moves the units in between; everyone else keeps their variant.</p>
        <${SplitBar} keys=${e.variants.map((v) => v.key)} weights=${current} label="Current split" />
        <div class="ramp-sliders">
          ${e.variants.map(
            (v, i) => html`<${WeightSlider} key=${v.key} id=${`ramp-${i}`} label=${`New weight of ${v.key} (%)`} index=${i} weights=${weights}
              onChange=${setWeights} disabled=${!!disabledWhy('ramp')} />`,
          )}
        </div>
        <${SplitBar} keys=${e.variants.map((v) => v.key)} weights=${weights} label="New split" />
        <div class="toolbar">
          <button type="button" class="primary" disabled=${!!disabledWhy('ramp') || !changed} onClick=${() => setDialog('ramp')}>Review ramp…</button>
          <button type="button" disabled=${!changed} onClick=${() => setWeights(current)}>Reset</button>
          ${statusWhy('ramp') && html`<span class="small muted">${statusWhy('ramp')}</span>`}
        </div>
      </section>

      <div class="cols-2">
        <section class="card" aria-labelledby="promote-title">
          <h3 id="promote-title">Promote a variant</h3>
          <fieldset class="plain-fieldset">
            <legend>Variant that becomes the route's behaviour</legend>
            ${e.variants.map(
              (v) => html`<label class="check"><input type="radio" name="promote" value=${v.key} checked=${promoteKey === v.key}
                disabled=${!!disabledWhy('promote')} onChange=${() => setPromoteKey(v.key)} /> <span class="mono">${v.key}</span>
                <span class="small muted mono">${JSON.stringify(v.params ?? {})}</span></label>`,
            )}
          </fieldset>
          <div class="toolbar">
            <button type="button" class="primary" disabled=${!!disabledWhy('promote')} onClick=${() => setDialog('promote')}>Promote ${promoteKey}…</button>
            ${statusWhy('promote') && html`<span class="small muted">${statusWhy('promote')}</span>`}
          </div>
        </section>

        <section class="card" aria-labelledby="rollback-title">
          <h3 id="rollback-title">Roll back</h3>
          <p class="small">Stops the experiment${e.status === 'released' ? ` and its release of ${e.releasedVariant}` : ''} at once; its traffic gets the route's defaults.</p>
          <div class="toolbar">
            <button type="button" class="danger" disabled=${!!disabledWhy('rollback')} onClick=${() => setDialog('rollback')}>Roll back…</button>
            ${statusWhy('rollback') && html`<span class="small muted">${statusWhy('rollback')}</span>`}
          </div>
        </section>
      </div>

      <${ConfirmDialog} open=${dialog === 'ramp'} title=${`Ramp ${e.key}`} confirmLabel="Ramp now" onClose=${() => setDialog(null)}
        onConfirm=${() => act(`Ramped ${e.key}.`, () => es.ramp(e.key, newWeights, e.version))}>
        <ul class="plain" data-testid="ramp-changes">
          ${e.variants.map((v, i) => html`<li><span class="mono">${v.key}</span> ${v.weight}% → <strong>${toPercent(weights[i] ?? 0)}%</strong>${' '}
            <span class="muted small">(variant buckets ${rangeText(impact.before[i])} → ${rangeText(impact.after[i])})</span></li>`)}
        </ul>
        <p data-testid="ramp-moves">
          ${impact.moves.length === 0
            ? 'No unit changes variant.'
            : html`Units whose variant bucket is in ${impact.moves.map(
                (m, k) => html`${k ? '; those in ' : ''}<strong>${rangeText(m)}</strong> move from <span class="mono">${m.from}</span> to <span class="mono">${m.to}</span>`,
              )}${` — ${impact.movedShare} of the experiment's units. Everyone else keeps their variant.`}`}
        </p>
        <${Scope} e=${e} />
      <//>

      <${ConfirmDialog} open=${dialog === 'promote'} title=${`Promote ${promoteKey} of ${e.key}`} confirmLabel=${`Promote ${promoteKey}`} onClose=${() => setDialog(null)}
        onConfirm=${() => act(`Promoted ${promoteKey}: route ${e.route} now serves it.`, () => es.promote(e.key, promoteKey, e.version))}>
        <p data-testid="promote-impact">All matching traffic on route <code>${e.route}</code> gets variant <strong class="mono">${promoteKey}</strong>'s params${' '}
          <code>${JSON.stringify(promoted?.params ?? {})}</code>: all ${bucketShare(10000)} of the route's buckets [0, 10000)${s.targeting ? ` ${s.targeting}` : ''},
          not only the experiment's allocation ${s.allocationText}.</p>
        <p>The experiment stops assigning variants and logging exposures; its results freeze.</p>
        ${guardrails.length > 0 &&
        html`<p>Last results for ${promoteKey}:</p>
          <ul class="plain">${guardrails.map((m) => {
            const c = m.comparisons?.find((x) => x.variant === promoteKey);
            const body = !c
              ? 'the baseline'
              : verdict(c) === 'none'
                ? 'no data yet'
                : html`<span class=${`lift-${verdict(c)}`}>${signedPct(c.relLift)}</span> (95% ${signedPct(c.relCi95?.[0])} to ${signedPct(c.relCi95?.[1])})`;
            return html`<li><span class="mono">${m.metric}</span>: ${body}</li>`;
          })}</ul>`}
      <//>

      <${ConfirmDialog} open=${dialog === 'rollback'} title=${`Roll back ${e.key}`} confirmLabel="Roll back now" danger onClose=${() => setDialog(null)}
        onConfirm=${() => act(`Rolled back ${e.key}.`, () => es.transition(e.key, 'rollback', e.version))}>
        <p data-testid="rollback-impact">The experiment stops affecting traffic at once.${' '}
          ${e.status === 'released'
            ? html`All matching traffic on route <code>${e.route}</code> (buckets [0, 10000)${s.targeting ? ` ${s.targeting}` : ''}) stops getting <span class="mono">${e.releasedVariant}</span>'s params.`
            : html`Units in layer <code>${s.layer}</code> buckets <strong>${s.allocationText}</strong> (${s.share} of the layer) on route <code>${e.route}</code> stop getting their variant.`}${' '}
          They get the route's default params${route ? html` <code>${JSON.stringify(route.defaultParams ?? {})}</code>` : ''} (plus any other experiment they are in).</p>
        <p>Results stay readable; the experiment cannot be restarted.</p>
      <//>
    </div>
  `;
}
