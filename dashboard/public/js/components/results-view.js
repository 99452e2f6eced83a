import { useEffect, useMemo, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { agg } from '../lib/api.js';
import { clock, num, pct, pValue, signedPct, verdict } from '../lib/format.js';
import { chooseInterval, liftSeries } from '../lib/timeseries.js';
import { useAsync } from '../lib/use-async.js';
import { CiBar, ciDomain } from './ci-bar.js';
import { LiftChart } from './lift-chart.js';
import { variantColor } from './weights.js';

/** @param {number} v @param {string} type */
const CORRECTION_NAMES = { holm: 'Holm', bh: 'Benjamini–Hochberg' };
const meanText = (v, type) => (type === 'proportion' ? pct(v, 2) : num(v));

/** @param {{results: any}} props */
export function SrmBanner({ results }) {
  const srm = results?.srm;
  if (!srm?.mismatch) return null;
  return html`<div class="banner danger" role="alert" data-testid="srm-banner">
    <strong>Sample-ratio mismatch (p = ${pValue(srm.pValue)}).</strong>${' '}
    Units per variant do not match the weights, so these results cannot be trusted until the cause is found:
    broken assignment, redirects that drop a variant, bots, or lost exposure logs.
  </div>`;
}

/**
 * Assigned vs served (SPEC §11): which share of each variant's exposures its own model answered,
 * and once any fell back, the primary metric's lift over only the units never answered by a
 * fallback ("as served") beside the intention-to-treat lift, marked as biased.
 * @param {{experiment: any, results: any, asServed: any}} props
 */
function ServedTable({ experiment, results, asServed }) {
  const rows = experiment.variants.map((/** @type {{key: string}} */ v) => results.served.find((/** @type {any} */ s) => s.key === v.key)).filter(Boolean);
  const primary = experiment.metrics?.primary;
  const lift = (/** @type {any} */ r, /** @type {string} */ key) => shown(r?.metrics?.find((/** @type {any} */ m) => m.metric === primary)?.comparisons.find((/** @type {any} */ c) => c.variant === key));
  const units = (/** @type {any} */ r, /** @type {string} */ key) => r?.variants?.find((/** @type {any} */ v) => v.key === key)?.units;
  return html`<div class="card" data-testid="served">
    <h3>Assigned vs served</h3>
    <table class="grid compact">
      <caption class="sr-only">Share of each variant's exposures by who answered</caption>
      <thead><tr><th scope="col">Variant</th><th scope="col" class="num">Exposures</th><th scope="col" class="num">As assigned</th><th scope="col" class="num">Route fallback</th><th scope="col" class="num">Model fallback</th>
        ${asServed && primary && html`<th scope="col" class="num">Lift of ${primary}</th><th scope="col" class="num">As served <span class="tag biased">biased</span></th>`}</tr></thead>
      <tbody>
        ${rows.map(
          (/** @type {any} */ r, /** @type {number} */ i) => html`<tr data-variant=${r.key}><th scope="row">${r.key}</th><td class="num">${num(r.exposures)}</td>
            <td class="num">${pct(r.asAssigned, 1)}</td><td class="num" data-testid="route-fallback">${pct(r.routeFallback, 1)}</td><td class="num" data-testid="model-fallback">${pct(r.modelFallback, 1)}</td>
            ${asServed && primary && (i === 0
              ? html`<td class="num muted">baseline</td><td class="num muted">${num(units(asServed, r.key))} units</td>`
              : html`<td class="num">${signedPct(lift(results, r.key)?.relLift)}</td>
                  <td class="num" data-testid="as-served-lift" title=${`${num(units(asServed, r.key))} of ${num(units(results, r.key))} units; p = ${pValue(lift(asServed, r.key)?.pValue)}`}>${signedPct(lift(asServed, r.key)?.relLift)}</td>`)}</tr>`,
        )}
      </tbody>
    </table>
    <p class="small muted">The results above are intention-to-treat: each unit counts in the variant it was assigned, whoever answered. ${asServed
      ? 'The "as served" lift keeps only units never answered by a fallback; fallbacks are not random (a model that fails on hard requests sheds exactly those users), so it is biased: read it as a diagnostic, never as the result.'
      : 'No exposure fell back, so "as served" equals the results above.'}</p>
  </div>`;
}

/**
 * p50, p95 and p99 of the gateway's latency per variant, with their 95% intervals.
 * @param {{experiment: any, results: any}} props
 */
function PercentilesTable({ experiment, results }) {
  const rows = experiment.variants.map((/** @type {{key: string}} */ v) => results.latencyPercentiles?.find((/** @type {any} */ l) => l.key === v.key)).filter(Boolean);
  const ms = (/** @type {number} */ x) => `${num(x)} ms`;
  return html`<div class="card" data-testid="percentiles">
    <h3>Latency percentiles</h3>
    <table class="grid compact">
      <caption class="sr-only">Latency percentiles per variant with 95% intervals</caption>
      <thead><tr><th scope="col">Variant</th><th scope="col" class="num">Exposures</th><th scope="col" class="num">p50</th><th scope="col" class="num">p95</th><th scope="col" class="num">p99</th></tr></thead>
      <tbody>
        ${rows.map(
          (/** @type {any} */ r) => html`<tr data-variant=${r.key}><th scope="row">${r.key}</th><td class="num">${num(r.n)}</td>
            ${r.percentiles.map((/** @type {any} */ q) => html`<td class="num" title=${`95% interval ${ms(q.ci95[0])} to ${ms(q.ci95[1])}`}>${ms(q.value)} <span class="small muted">(${num(q.ci95[0])}–${num(q.ci95[1])})</span></td>`)}</tr>`,
        )}
      </tbody>
    </table>
    <p class="small muted">Over exposures, with distribution-free intervals between order statistics.</p>
  </div>`;
}

/**
 * An interleaving experiment's verdict (SPEC §13): which ranking the units preferred, by the
 * clicks on the items each contributed to the merged lists.
 * @param {{experiment: any, interleaving: any}} props
 */
function InterleavingCard({ experiment, interleaving: il }) {
  const [control, treatment] = il.variants;
  const decided = control.preferred + treatment.preferred;
  return html`<div class="card" data-testid="interleaving">
    <h3>Interleaving</h3>
    <p>
      ${decided === 0
        ? html`<span class="muted">No unit has preferred either ranking yet.</span>`
        : html`<strong data-testid="preference">${pct(il.preference, 1)}</strong> of the units with a preference chose <span class="mono">${treatment.key}</span>'s ranking
          (sign test p = ${pValue(il.pValue)}, <abbr title="Always-valid (mixture SPRT): safe to check at any time">sequential p</abbr> = ${pValue(il.sequentialPValue)}).`}
    </p>
    <table class="grid compact">
      <caption class="sr-only">Units preferring each ranking</caption>
      <thead><tr><th scope="col">Variant</th><th scope="col" class="num">Units preferring it</th></tr></thead>
      <tbody>
        ${experiment.variants.map((/** @type {any} */ v) => html`<tr data-variant=${v.key}><th scope="row">${v.key}</th><td class="num">${num(il.variants.find((/** @type {any} */ x) => x.key === v.key)?.preferred ?? 0)}</td></tr>`)}
        <tr><th scope="row" class="muted">ties</th><td class="num">${num(il.ties)}</td></tr>
      </tbody>
    </table>
    <p class="small muted">${num(il.requests)} interleaved requests from ${num(il.units)} units; ${num(il.clickedUnits)} units clicked (<span class="mono">${il.click}</span> events naming the request and the item). Each unit counts once, for the ranking whose items it clicked more.</p>
  </div>`;
}

/**
 * Results per value of each declared slice attribute (SPEC §11). Every p-value and interval is
 * corrected over all the slices' comparisons: a slice that looks different is often chance.
 * @param {{experiment: any, slices: any}} props
 */
function SlicesCard({ experiment, slices }) {
  const method = CORRECTION_NAMES[/** @type {'holm' | 'bh'} */ (slices.correction.method)];
  return html`<div class="card" data-testid="slices">
    <h3>Slices <span class="tag corrected" title=${`p-values and intervals corrected over all ${slices.correction.tests} slice comparisons; hover a p-value for the raw one`}>${method}-corrected</span></h3>
    ${slices.slices.length === 0 && html`<p class="muted">No exposures with ${slices.attributes.join(', ')} yet.</p>`}
    ${slices.attributes.map((/** @type {string} */ attribute) => {
      const rows = slices.slices.filter((/** @type {any} */ x) => x.attribute === attribute);
      return rows.length > 0 && html`<table class="grid compact" data-attribute=${attribute}>
        <caption><span class="mono">${attribute}</span> <span class="muted small">each unit in the value of its first exposure</span></caption>
        <thead><tr><th scope="col">Value</th><th scope="col" class="num">Units</th><th scope="col">Metric</th><th scope="col">Variant</th><th scope="col" class="num">Lift</th>
          <th scope="col" class="num">Corrected 95% interval</th><th scope="col" class="num">Corrected p</th></tr></thead>
        <tbody>
          ${rows.flatMap((/** @type {any} */ slice) =>
            slice.metrics.flatMap((/** @type {any} */ m) =>
              m.comparisons.map((/** @type {any} */ raw) => {
                const c = shown(raw);
                return html`<tr data-slice=${slice.value} data-metric=${m.metric} data-variant=${c.variant}>
                  <th scope="row">${slice.value}</th>
                  <td class="num" title=${experiment.variants.map((/** @type {any} */ v) => `${v.key}: ${num(slice.variants.find((/** @type {any} */ x) => x.key === v.key)?.units ?? 0)}`).join(', ')}>${num(slice.variants.reduce((/** @type {number} */ a, /** @type {any} */ v) => a + v.units, 0))}</td>
                  <td class="mono">${m.metric}</td><td>${c.variant}</td>
                  <td class=${`num lift-${verdict(c)}`}>${signedPct(c.relLift)}</td>
                  <td class="num small">${signedPct(c.relCi95?.[0])} … ${signedPct(c.relCi95?.[1])}</td>
                  <td class="num" data-testid="slice-p" title=${`raw p = ${pValue(raw.pValue)}`}>${pValue(c.pValue)}</td>
                </tr>`;
              }),
            ),
          )}
        </tbody>
      </table>`;
    })}
  </div>`;
}

/**
 * The phases of a ramped experiment (ADR 0009): each weight change starts one, and each unit is
 * analysed in the phase it came in, so the figures above compare variants within phases.
 * @param {{experiment: any, phases: {startedAt: string, weights: Record<string, number> | null, units: Record<string, number>, moved: number}[]}} props
 */
function PhasesTable({ experiment, phases }) {
  const keys = experiment.variants.map((/** @type {{key: string}} */ v) => v.key);
  const moved = phases.reduce((a, p) => a + p.moved, 0);
  return html`
    <details class="phases" data-testid="phases">
      <summary>Analysed in ${phases.length} phases, one per weight change; ${moved} ${moved === 1 ? 'unit' : 'units'} moved by a ramp</summary>
      <p class="small muted">Each unit counts once, in the phase of its first exposure, with its data until the next ramp. A unit a ramp moved to another variant stays in its first one. Variants are compared within each phase, and the phases weighted by their units.</p>
      <table class="grid compact">
        <caption class="sr-only">Units per phase</caption>
        <thead><tr><th scope="col">Since</th><th scope="col">Weights</th>${keys.map((k) => html`<th scope="col" class="num">${k}</th>`)}<th scope="col" class="num">Moved later</th></tr></thead>
        <tbody>
          ${phases.map(
            (p) => html`<tr>
              <td>${new Date(p.startedAt).toLocaleString()}</td>
              <td class="mono">${p.weights ? keys.map((k) => `${p.weights?.[k] ?? 0}`).join(' / ') : 'not recorded'}</td>
              ${keys.map((k) => html`<td class="num">${p.units[k] ?? 0}</td>`)}
              <td class="num">${p.moved}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </details>
  `;
}

/**
 * The primary metric in one sentence per treatment, for the decision at hand. Significance uses
 * the always-valid p-value, which stays honest however often the page is looked at.
 * @param {{experiment: any, results: any}} props
 */
function Decision({ experiment, results }) {
  const primary = experiment.metrics?.primary;
  const m = results?.metrics?.find((x) => x.metric === primary);
  if (!primary) return html`<p class="small muted">No primary metric: the experiment has no decision metric.</p>`;
  if (!m?.comparisons?.length) return html`<p class="small muted">Primary metric <span class="mono">${primary}</span>: no data yet.</p>`;
  return html`<div class="decision" data-testid="decision">
    <h4 class="sr-only">Primary metric</h4>
    ${m.comparisons.map(shown).map((/** @type {any} */ c) => {
      const kind = verdict(c);
      const corrected = c.raw ? ` ${CORRECTION_NAMES[/** @type {'holm' | 'bh'} */ (c.adjusted.method)]}-corrected` : '';
      const sig = typeof c.sequentialPValue === 'number' && c.sequentialPValue < 0.05;
      return html`<p>
        <span class="mono">${primary}</span>: <strong class="mono">${c.variant}</strong> vs ${c.baseline}${' '}
        <strong class=${`lift-${kind}`}>${signedPct(c.relLift)}</strong> (95% ${signedPct(c.relCi95?.[0])} to ${signedPct(c.relCi95?.[1])}),
        P(beat control) ${pct(c.probabilityToBeat, 1)}.${' '}
        ${sig
          ? html`<span class=${`tag ${kind === 'loss' ? 'loss' : 'win'}`}>${kind === 'loss' ? 'Significantly worse' : 'Significantly better'}</span> <span class="small muted">${corrected} always-valid p ${pValue(c.sequentialPValue)}</span>`
          : html`<span class="tag">Not conclusive yet</span> <span class="small muted">${corrected} always-valid p ${pValue(c.sequentialPValue)}</span>`}
      </p>`;
    })}
  </div>`;
}

/** @param {{experiment: any, results: any}} props */
function VariantsTable({ experiment, results }) {
  const total = (results?.variants ?? []).reduce((s, v) => s + (v.units ?? 0), 0);
  return html`<table class="grid compact" data-testid="variants-table">
    <caption>Units and exposures</caption>
    <thead><tr><th scope="col">Variant</th><th scope="col" class="num">Weight</th><th scope="col" class="num">Units</th><th scope="col" class="num">Share of units</th><th scope="col" class="num">Exposures</th></tr></thead>
    <tbody>
      ${experiment.variants.map((v, i) => {
        const r = results?.variants?.find((x) => x.key === v.key);
        return html`<tr data-variant=${v.key}>
          <th scope="row"><span class="swatch" style=${{ background: variantColor(i) }}></span>${v.key}${i === 0 ? html` <span class="muted small">control</span>` : ''}</th>
          <td class="num">${v.weight}%</td>
          <td class="num" data-testid="units">${num(r?.units ?? 0)}</td>
          <td class="num">${total ? pct((r?.units ?? 0) / total, 1) : '—'}</td>
          <td class="num" data-testid="exposures">${num(r?.exposures ?? 0)}</td>
        </tr>`;
      })}
    </tbody>
  </table>`;
}

/**
 * A comparison as shown: with a multiple-testing correction (SPEC §11) its p-values and
 * intervals are the corrected ones, the raw ones kept for the tooltips.
 * @param {any} c
 */
function shown(c) {
  if (!c?.adjusted) return c;
  return { ...c, pValue: c.adjusted.pValue, sequentialPValue: c.adjusted.sequentialPValue, ci95: c.adjusted.ci95, relCi95: c.adjusted.relCi95, raw: c };
}

/**
 * A metric's figures without the CUPED adjustment (SPEC §11), for the raw view.
 * @param {any} m
 */
function unadjusted(m) {
  return {
    ...m,
    variants: (m.variants ?? []).map((/** @type {any} */ v) => (v.raw ? { ...v, ...v.raw } : v)),
    comparisons: (m.comparisons ?? []).map((/** @type {any} */ c) => (c.raw ? { variant: c.variant, baseline: c.baseline, ...c.raw } : c)),
  };
}

/** @param {{experiment: any, m: any, adjusted: boolean}} props */
function MetricTable({ experiment, m: metric, adjusted }) {
  const m = adjusted ? metric : unadjusted(metric);
  const cuped = adjusted ? metric.comparisons?.find((/** @type {any} */ c) => c.cuped)?.cuped : undefined;
  const role = m.metric === experiment.metrics?.primary ? 'primary' : (experiment.metrics?.guardrails ?? []).includes(m.metric) ? 'guardrail' : (experiment.metrics?.secondary ?? []).includes(m.metric) ? 'secondary' : '';
  const comparisons = (m.comparisons ?? []).map(shown);
  const method = m.comparisons?.find((/** @type {any} */ c) => c.adjusted)?.adjusted.method;
  const domain = ciDomain(comparisons);
  return html`<table class="grid compact metric" data-metric=${m.metric}>
    <caption><span class="mono">${m.metric}</span> <span class="muted small">${m.type}</span>${role ? html` <span class=${`tag ${role}`}>${role}</span>` : ''}
      ${cuped && html` <span class="tag cuped" data-testid="cuped" title="Adjusted by each unit's same metric before its first exposure (CUPED); θ = ${cuped.theta === null ? 'per phase' : num(cuped.theta)}">CUPED: variance −${pct(cuped.varianceReduction, 0)}</span>`}
      ${method && html` <span class="tag corrected" data-testid="corrected" title="p-values and intervals corrected over the primary and secondary metrics × treatments; hover a p-value for the raw one">${CORRECTION_NAMES[/** @type {'holm' | 'bh'} */ (method)]}-corrected</span>`}</caption>
    <thead><tr>
      <th scope="col">Variant</th><th scope="col" class="num">Units</th><th scope="col" class="num">Mean</th><th scope="col" class="num">Lift</th>
      <th scope="col" class="ci-col">95% interval of lift</th><th scope="col" class="num">p-value</th><th scope="col" class="num"><abbr title="Always-valid (mixture SPRT): safe to check at any time">Sequential p</abbr></th>
      <th scope="col" class="num">P(beat control)</th>
    </tr></thead>
    <tbody>
      ${experiment.variants.map((v, i) => {
        const s = m.variants?.find((x) => x.key === v.key);
        const c = comparisons.find((/** @type {any} */ x) => x.variant === v.key);
        const kind = verdict(c);
        return html`<tr data-variant=${v.key}>
          <th scope="row"><span class="swatch" style=${{ background: variantColor(i) }}></span>${v.key}</th>
          <td class="num">${num(s?.units)}</td>
          <td class="num" data-testid="mean">${s ? meanText(s.mean, m.type) : '—'}</td>
          ${i === 0 || !c
            ? html`<td class="num muted" colspan="1">${i === 0 ? 'baseline' : '—'}</td><td></td><td class="num"></td><td class="num"></td><td class="num"></td>`
            : html`<td class=${`num lift-${kind}`} data-testid="lift"><strong>${signedPct(c.relLift)}</strong></td>
                <td class="ci-col">${kind === 'none'
                  ? html`<span class="muted">—</span>`
                  : html`<div class="ci-cell"><${CiBar} lo=${c.relCi95?.[0]} hi=${c.relCi95?.[1]} point=${c.relLift} domain=${domain} />
                      <span class="small muted">${signedPct(c.relCi95?.[0])} … ${signedPct(c.relCi95?.[1])}</span></div>`}</td>
                <td class="num" title=${c.raw ? `raw p = ${pValue(c.raw.pValue)}` : undefined}>${pValue(c.pValue)}</td>
                <td class="num" title=${c.raw ? `raw sequential p = ${pValue(c.raw.sequentialPValue)}` : undefined}>${pValue(c.sequentialPValue)}</td>
                <td class="num">${pct(c.probabilityToBeat, 1)}</td>`}
        </tr>`;
      })}
    </tbody>
  </table>`;
}

/**
 * Results of one experiment from the aggregator, refreshed every 5 s while auto refresh is on.
 * @param {{experiment: any}} props
 */
export function ResultsView({ experiment }) {
  const [auto, setAuto] = useState(true);
  const [adjusted, setAdjusted] = useState(true);
  const metricKeys = [experiment.metrics?.primary, ...(experiment.metrics?.guardrails ?? [])].filter(Boolean);
  const [chartMetric, setChartMetric] = useState(metricKeys[0] ?? '');
  const interval = auto ? 5000 : undefined;
  const results = useAsync(() => agg.results(experiment.key), [experiment.key], { intervalMs: interval });
  const allMetrics = useMemo(() => {
    const ms = results.data?.metrics ?? [];
    const order = (k) => (k === experiment.metrics?.primary ? 0 : (experiment.metrics?.guardrails ?? []).includes(k) ? 1 : 2);
    return ms.slice().sort((a, b) => order(a.metric) - order(b.metric));
  }, [results.data]);
  useEffect(() => {
    if (!chartMetric && allMetrics[0]) setChartMetric(allMetrics[0].metric);
  }, [allMetrics]);
  const series = useAsync(
    () => (chartMetric ? agg.timeseries(experiment.key, chartMetric, chooseInterval(experiment.startedAt, Date.now())) : Promise.resolve(null)),
    [experiment.key, chartMetric, experiment.startedAt],
    { intervalMs: interval },
  );
  const lift = useMemo(() => liftSeries(series.data, experiment.variants.map((v) => v.key)), [series.data, experiment.variants]);
  // Slices read every unit again (one query per attribute): loaded with the page and on "Refresh now", not polled.
  const sliced = (experiment.analysis?.sliceBy ?? []).length > 0;
  const slices = useAsync(() => (sliced ? agg.slices(experiment.key) : Promise.resolve(null)), [experiment.key, sliced]);
  // "As served" only differs once some exposure fell back; like slices, it is not polled.
  const fellBack = (results.data?.served ?? []).some((/** @type {any} */ s) => s.routeFallback > 0 || s.modelFallback > 0);
  const asServed = useAsync(() => (fellBack ? agg.asServed(experiment.key) : Promise.resolve(null)), [experiment.key, fellBack]);
  const noResults = results.error?.status === 404 || (results.data && !(results.data.variants ?? []).length);

  return html`
    <div class="results">
      <div class="toolbar results-bar">
        <label class="check"><input type="checkbox" checked=${auto} onChange=${(e) => setAuto(e.currentTarget.checked)} /> Auto refresh every 5 s</label>
        <button type="button" class="small" onClick=${() => {
          results.reload();
          series.reload();
          slices.reload();
          asServed.reload();
        }}>Refresh now</button>
        <span class="muted small" aria-live="polite" data-testid="updated-at">
          ${results.data?.updatedAt ? `Results as of ${clock(results.data.updatedAt)}` : ''}${results.loading ? ' · refreshing…' : ''}
        </span>
      </div>
      ${results.error && results.error.status !== 404 && html`<p class="notice error" role="alert">Cannot load results: ${results.error.message}</p>`}
      <${SrmBanner} results=${results.data} />
      ${noResults && html`<p class="notice info">No exposures yet. Results appear a few seconds after traffic reaches the gateway.</p>`}
      <div class="results-grid">
        <div class="card">
          <${VariantsTable} experiment=${experiment} results=${results.data} />
          ${results.data?.srm && !results.data.srm.mismatch && html`<p class="small muted">Sample ratio matches the weights${results.data.phases ? ' of each phase' : ''} (SRM p = ${pValue(results.data.srm.pValue)}).</p>`}
          ${results.data?.phases && html`<${PhasesTable} experiment=${experiment} phases=${results.data.phases} />`}
          <${Decision} experiment=${experiment} results=${results.data} />
        </div>
        <div class="card chart-card">
          <div class="section-head">
            <h3 id="chart-title">Cumulative lift over time</h3>
            <label class="inline">Metric
              <select value=${chartMetric} onChange=${(e) => setChartMetric(e.currentTarget.value)}>
                ${[...new Set([...metricKeys, ...allMetrics.map((m) => m.metric)])].map((k) => html`<option value=${k}>${k}</option>`)}
              </select>
            </label>
          </div>
          ${series.error && series.error.status !== 404 ? html`<p class="notice error">Cannot load the time series: ${series.error.message}</p>` : ''}
          <${LiftChart} series=${lift} metric=${chartMetric} />
        </div>
      </div>
      ${results.data?.interleaving && html`<${InterleavingCard} experiment=${experiment} interleaving=${results.data.interleaving} />`}
      ${results.data?.served && html`<div class="results-grid">
        <${ServedTable} experiment=${experiment} results=${results.data} asServed=${asServed.data} />
        <${PercentilesTable} experiment=${experiment} results=${results.data} />
      </div>`}
      <div class="card metrics-card">
        <h3>Metrics</h3>
        ${allMetrics.length === 0 && html`<p class="muted">No metric results yet.</p>`}
        ${allMetrics.some((m) => m.comparisons?.some((/** @type {any} */ c) => c.cuped)) &&
        html`<label class="check small" data-testid="cuped-toggle"><input type="checkbox" checked=${adjusted} onChange=${(e) => setAdjusted(e.currentTarget.checked)} />
          Adjust by pre-experiment behaviour (CUPED); unchecked shows the raw figures</label>`}
        ${allMetrics.map((m) => html`<${MetricTable} key=${m.metric} experiment=${experiment} m=${m} adjusted=${adjusted} />`)}
      </div>
      ${slices.error && slices.error.status !== 404 && html`<p class="notice error" role="alert">Cannot load the slices: ${slices.error.message}</p>`}
      ${slices.data && html`<${SlicesCard} experiment=${experiment} slices=${slices.data} />`}
    </div>
  `;
}
