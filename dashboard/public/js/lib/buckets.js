import { TOTAL, toHundredths } from './weights.js';

/** The 10,000 buckets of bucket(s) = murmur3(s) mod 10000 (SPEC §3). */
export const BUCKETS = 10000;

/**
 * Variant ranges over the experiment's variant buckets: laid out in variant order over the
 * cumulative round(weight*100), so variant i owns [start, end).
 * @param {{key: string, weight: number}[]} variants
 * @returns {{key: string, start: number, end: number}[]}
 */
export function variantRanges(variants) {
  let at = 0;
  return variants.map((v) => {
    const start = at;
    at += toHundredths(v.weight);
    return { key: v.key, start, end: at };
  });
}

/**
 * Which variant buckets change hands when weights move from `before` to `after` (same variants,
 * same order). Because ranges stay in variant order, a ramp only moves the buckets between the
 * old and the new boundaries.
 * @param {{key: string, weight: number}[]} before
 * @param {{key: string, weight: number}[]} after
 * @returns {{from: string, to: string, start: number, end: number}[]}
 */
export function rampMoves(before, after) {
  const a = variantRanges(before);
  const b = variantRanges(after);
  const cuts = [...new Set([0, TOTAL, ...a.flatMap((r) => [r.start, r.end]), ...b.flatMap((r) => [r.start, r.end])])].sort((x, y) => x - y);
  const owner = (ranges, bucket) => ranges.find((r) => r.start <= bucket && bucket < r.end)?.key;
  /** @type {{from: string, to: string, start: number, end: number}[]} */
  const moves = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const start = cuts[i];
    const end = cuts[i + 1];
    if (start === end) continue;
    const from = owner(a, start);
    const to = owner(b, start);
    if (!from || !to || from === to) continue;
    const last = moves[moves.length - 1];
    if (last && last.end === start && last.from === from && last.to === to) last.end = end;
    else moves.push({ from, to, start, end });
  }
  return moves;
}

/** @param {{start: number, end: number}} r */
export const rangeText = (r) => `[${r.start}, ${r.end})`;

/** @param {number} n buckets out of 10,000 */
export const bucketShare = (n) => `${(n / 100).toFixed(n % 100 === 0 ? 0 : 2)}%`;
