// What a release action does to traffic, in buckets (SPEC §3), for the confirmation dialogs.

import { bucketShare, BUCKETS, rampMoves, rangeText, variantRanges } from './buckets.js';

/** @param {any} e */
export function scope(e) {
  const a = e.allocation ?? { start: 0, end: BUCKETS };
  const targeting = e.targeting?.length ? `that match the targeting (${e.targeting.map(ruleText).join(' and ')})` : '';
  return {
    allocation: a,
    allocationText: rangeText(a),
    layer: e.layer ?? e.key,
    share: bucketShare(a.end - a.start),
    targeting,
  };
}

/** @param {{attribute: string, op: string, value?: unknown}} r */
export function ruleText(r) {
  return r.op === 'exists' ? `${r.attribute} ${r.value === false ? 'is absent' : 'is present'}` : `${r.attribute} ${r.op} ${JSON.stringify(r.value)}`;
}

/**
 * @param {any} e the experiment
 * @param {Record<string, number>} weights the new weights by variant key
 */
export function rampImpact(e, weights) {
  const after = e.variants.map((v) => ({ key: v.key, weight: weights[v.key] ?? v.weight }));
  const moves = rampMoves(e.variants, after);
  const moved = moves.reduce((s, m) => s + (m.end - m.start), 0);
  return { before: variantRanges(e.variants), after: variantRanges(after), moves, movedShare: bucketShare(moved), moved };
}
