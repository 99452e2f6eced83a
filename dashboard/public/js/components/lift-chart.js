import { useEffect, useRef } from 'preact/hooks';
import { html } from '../lib/html.js';
import { clock, signedPct } from '../lib/format.js';
import { variantColor } from './weights.js';

/** @typedef {{t: number, lift: number | null, lo: number | null, hi: number | null}} LiftPoint */
/** @typedef {{variant: string, index: number, points: LiftPoint[]}} LiftSeries */

/** @param {string} hex @param {number} alpha */
function withAlpha(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/**
 * Chart.js datasets for cumulative relative lift: per variant an invisible upper bound, a lower
 * bound filled up to it (the 95% band), and the lift line itself.
 * @param {LiftSeries[]} series
 */
export function liftDatasets(series) {
  return series.flatMap((s) => {
    const color = variantColor(s.index);
    const pts = (key) => s.points.map((p) => ({ x: p.t, y: p[key] === null ? null : p[key] * 100 }));
    const band = { pointRadius: 0, borderWidth: 0, borderColor: 'transparent', spanGaps: true, band: true };
    return [
      { ...band, label: `${s.variant} upper 95%`, data: pts('hi'), fill: false },
      { ...band, label: `${s.variant} lower 95%`, data: pts('lo'), fill: '-1', backgroundColor: withAlpha(color, 0.16) },
      { label: `${s.variant} lift`, data: pts('lift'), borderColor: color, backgroundColor: color, borderWidth: 2, pointRadius: 2, tension: 0.2, fill: false, spanGaps: true },
    ];
  });
}

/**
 * Cumulative relative lift over time with its 95% band, drawn by Chart.js (loaded as a UMD
 * global by index.html). The canvas has a text summary; the numbers are also in a table.
 * @param {{series: LiftSeries[], metric: string}} props
 */
export function LiftChart({ series, metric }) {
  const canvas = useRef(/** @type {HTMLCanvasElement | null} */ (null));
  const chart = useRef(/** @type {any} */ (null));
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => p.t)))].sort((a, b) => a - b);

  useEffect(() => {
    const Chart = /** @type {any} */ (globalThis).Chart;
    if (!canvas.current || !Chart) return undefined;
    chart.current = new Chart(canvas.current, {
      type: 'line',
      data: { datasets: [] },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: true,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        scales: {
          x: { type: 'linear', ticks: { callback: (v) => clock(v), maxTicksLimit: 8 }, title: { display: true, text: 'time' } },
          y: {
            title: { display: true, text: `relative lift of ${metric} (%)` },
            ticks: { callback: (v) => `${v}%` },
            grid: { color: (ctx) => (ctx.tick?.value === 0 ? '#495057' : '#e9ecef'), lineWidth: (ctx) => (ctx.tick?.value === 0 ? 1.5 : 1) },
          },
        },
        plugins: {
          legend: { labels: { filter: (item) => item.text.endsWith(' lift') } },
          tooltip: {
            filter: (item) => !item.dataset.band,
            callbacks: {
              title: (items) => (items[0] ? clock(items[0].parsed.x) : ''),
              label: (item) => `${item.dataset.label}: ${item.parsed.y === null ? '—' : `${item.parsed.y.toFixed(2)}%`}`,
            },
          },
        },
      },
    });
    return () => chart.current?.destroy();
  }, []);

  useEffect(() => {
    const c = chart.current;
    if (!c) return;
    c.data.datasets = liftDatasets(series);
    // Fit the time axis to the data (a linear scale would round out to nice ticks); one point
    // alone gets a little room on each side.
    const pad = times.length === 1 ? 30_000 : 0;
    c.options.scales.x.min = times.length ? times[0] - pad : undefined;
    c.options.scales.x.max = times.length ? times[times.length - 1] + pad : undefined;
    c.options.scales.y.title.text = `relative lift of ${metric} (%)`;
    c.update('none');
  }, [series, metric]);

  const last = series.map((s) => ({ s, p: s.points[s.points.length - 1] })).filter((x) => x.p);
  const summary = last.length
    ? `Cumulative relative lift of ${metric}: ` + last.map(({ s, p }) => `${s.variant} ${signedPct(p.lift)} (95% ${signedPct(p.lo)} to ${signedPct(p.hi)})`).join('; ')
    : `No time series for ${metric} yet`;

  return html`
    <div class="chart-wrap">
      <canvas ref=${canvas} role="img" aria-label=${summary}></canvas>
      ${times.length === 0 && html`<p class="chart-empty muted" aria-hidden="true">No data for ${metric} yet.</p>`}
    </div>
    <details class="chart-table">
      <summary>Data table (${times.length} points)</summary>
      <table>
        <thead><tr><th scope="col">time</th>${series.map((s) => html`<th scope="col">${s.variant} lift [95%]</th>`)}</tr></thead>
        <tbody>
          ${times.map(
            (t) => html`<tr><td>${clock(t)}</td>${series.map((s) => {
              const p = s.points.find((q) => q.t === t);
              return html`<td>${p ? `${signedPct(p.lift)} [${signedPct(p.lo)}, ${signedPct(p.hi)}]` : '—'}</td>`;
            })}</tr>`,
          )}
        </tbody>
      </table>
    </details>
  `;
}
