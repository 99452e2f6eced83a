// Weights are percentages with up to two decimals that must sum to exactly 100 (SPEC §3). All
// arithmetic here is in integer hundredths, as the assignment does, so the sum is exact.

export const TOTAL = 10000;

/** @param {number} percent */
export const toHundredths = (percent) => Math.round(percent * 100);
/** @param {number} h */
export const toPercent = (h) => h / 100;

/** @param {number[]} hs */
export const sum = (hs) => hs.reduce((a, b) => a + b, 0);

/**
 * An even split of 100% over n variants; the first variants absorb the leftover hundredths.
 * @param {number} n
 * @returns {number[]} hundredths
 */
export function evenSplit(n) {
  const base = Math.floor(TOTAL / n);
  return Array.from({ length: n }, (_, i) => base + (i < TOTAL - base * n ? 1 : 0));
}

/**
 * Sets variant `index` to `value` hundredths and rescales the others proportionally so the total
 * stays exactly 100%. Leftover hundredths from rounding go to the largest remainders.
 * @param {number[]} hs current weights in hundredths
 * @param {number} index
 * @param {number} value new weight of `index` in hundredths
 * @returns {number[]}
 */
export function rebalance(hs, index, value) {
  const target = Math.max(0, Math.min(TOTAL, Math.round(value)));
  const others = hs.map((_, i) => i).filter((i) => i !== index);
  if (others.length === 0) return [TOTAL];
  const remaining = TOTAL - target;
  const otherSum = sum(others.map((i) => hs[i]));
  const out = hs.slice();
  out[index] = target;
  // With every other weight at zero there is no proportion to keep: share the rest evenly.
  const shares = others.map((i) => (otherSum === 0 ? remaining / others.length : (hs[i] * remaining) / otherSum));
  const floors = shares.map(Math.floor);
  let leftover = remaining - sum(floors);
  const order = shares.map((s, k) => ({ k, frac: s - floors[k] })).sort((a, b) => b.frac - a.frac || a.k - b.k);
  for (const { k } of order) {
    if (leftover <= 0) break;
    floors[k] += 1;
    leftover -= 1;
  }
  others.forEach((i, k) => (out[i] = floors[k]));
  return out;
}

/**
 * A variant's weight typed by hand: two decimals at most, 0..100.
 * @param {string} text
 * @returns {number | null} hundredths, or null when not a valid weight
 */
export function parseWeight(text) {
  if (!/^\s*\d{1,3}(\.\d{1,2})?\s*$/.test(text)) return null;
  const h = toHundredths(Number(text));
  return h >= 0 && h <= TOTAL ? h : null;
}

/** @param {number} h */
export function formatWeight(h) {
  return (h / 100).toFixed(h % 100 === 0 ? 0 : h % 10 === 0 ? 1 : 2);
}
