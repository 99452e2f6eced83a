import { html } from '../lib/html.js';
import { formatWeight, parseWeight, rebalance, sum, TOTAL } from '../lib/weights.js';
import { errorProps, FieldError } from './field.js';

const PALETTE = ['#4c6ef5', '#f08c00', '#2b8a3e', '#ae3ec9', '#e03131', '#1098ad', '#5c940d', '#d6336c'];
/** @param {number} i */
export const variantColor = (i) => PALETTE[i % PALETTE.length];

/**
 * One variant's weight: a slider (arrow keys move 1%) and a number box for exact values with
 * two decimals. Any change rebalances the other variants so the total stays 100%.
 * @param {{id: string, label: string, index: number, weights: number[], onChange: (hs: number[]) => void,
 *   disabled?: boolean, error?: string | null}} props
 */
export function WeightSlider({ id, label, index, weights, onChange, disabled, error }) {
  const h = weights[index] ?? 0;
  const set = (value) => onChange(rebalance(weights, index, value));
  return html`
    <div class="weight">
      <label for=${id}>${label}</label>
      <div class="weight-inputs">
        <input type="range" id=${`${id}-range`} min="0" max="100" step="1" value=${h / 100}
          aria-label=${`${label} slider`} aria-valuetext=${`${formatWeight(h)}%`} disabled=${disabled}
          onInput=${(e) => set(Math.round(Number(e.currentTarget.value) * 100))} />
        <input type="number" id=${id} min="0" max="100" step="0.01" value=${formatWeight(h)} disabled=${disabled}
          class="weight-number" ...${errorProps(id, error)}
          onChange=${(e) => {
            const parsed = parseWeight(e.currentTarget.value);
            if (parsed === null) e.currentTarget.value = formatWeight(h);
            else set(parsed);
          }} />
        <span aria-hidden="true">%</span>
      </div>
      <${FieldError} id=${id} error=${error} />
    </div>
  `;
}

/**
 * The split at a glance: one bar, one segment per variant.
 * @param {{keys: string[], weights: number[], label?: string}} props
 */
export function SplitBar({ keys, weights, label }) {
  const total = sum(weights);
  return html`
    <div class="split">
      <div class="split-bar" role="img" aria-label=${`${label ?? 'Split'}: ${keys.map((k, i) => `${k} ${formatWeight(weights[i] ?? 0)}%`).join(', ')}`}>
        ${keys.map(
          (k, i) => html`<span key=${i} class="split-seg" style=${{ width: `${((weights[i] ?? 0) / TOTAL) * 100}%`, background: variantColor(i) }}
            title=${`${k}: ${formatWeight(weights[i] ?? 0)}%`}>${(weights[i] ?? 0) >= 800 ? `${k} ${formatWeight(weights[i] ?? 0)}%` : ''}</span>`,
        )}
      </div>
      <p class=${total === TOTAL ? 'muted small' : 'field-error'}>Total ${formatWeight(total)}%${total === TOTAL ? '' : ' — must be exactly 100%'}</p>
    </div>
  `;
}
