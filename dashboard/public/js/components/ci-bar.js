import { html } from '../lib/html.js';
import { signedPct, verdict } from '../lib/format.js';

/**
 * A 95% confidence interval drawn on a scale shared by the rows of one metric, with zero
 * marked: clear of zero on the right is a win, on the left a loss.
 * @param {{lo: number, hi: number, point: number, domain: [number, number]}} props
 */
export function CiBar({ lo, hi, point, domain }) {
  if (![lo, hi, point].every(Number.isFinite)) return html`<span class="muted">—</span>`;
  const [min, max] = domain;
  const span = max - min || 1;
  const x = (v) => `${(((Math.min(max, Math.max(min, v)) - min) / span) * 100).toFixed(2)}%`;
  const kind = verdict({ relCi95: [lo, hi] });
  return html`
    <div class=${`ci ci-${kind}`} role="img" aria-label=${`95% interval ${signedPct(lo)} to ${signedPct(hi)}`}>
      <span class="ci-zero" style=${{ left: x(0) }}></span>
      <span class="ci-range" style=${{ left: x(lo), width: `calc(${x(hi)} - ${x(lo)})` }}></span>
      <span class="ci-point" style=${{ left: x(point) }}></span>
    </div>
  `;
}

/**
 * A domain covering every interval of a metric and zero, padded a little.
 * @param {{relCi95?: number[]}[]} comparisons
 * @returns {[number, number]}
 */
export function ciDomain(comparisons) {
  const xs = [0, ...comparisons.flatMap((c) => (c.relCi95 ?? []).filter(Number.isFinite))];
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const pad = (hi - lo || 0.1) * 0.08;
  return [lo - pad, hi + pad];
}
