import { normalQuantile } from '@bunryu/core';
import type { ShadowFacts } from '../metrics-store/metrics-store.ts';

/** Pairs whose compared outputs are read for the agreement figures: the newest ones. */
export const AGREEMENT_PAIRS = 5000;

const Z95 = normalQuantile(0.975);

/** GET /v1/shadow/:route (SPEC §13): the shadow against what the clients were answered, pair by pair. */
export interface ShadowResults {
  route: string;
  pairs: number;
  primary: { errorRate: number | null; meanLatencyMs: number | null };
  shadow: { errorRate: number | null; meanLatencyMs: number | null };
  /** shadow − primary, per pair, with the paired 95% interval (normal, over the pairs' differences). */
  errorRateDiff: { diff: number | null; ci95: [number | null, number | null] };
  latencyDiffMs: { diff: number | null; ci95: [number | null, number | null] };
  /**
   * Over the newest AGREEMENT_PAIRS pairs whose answers both carried the compared field: the share
   * identical, and for numbers or equal-length lists of numbers, the mean absolute difference per
   * element and the mean Spearman rank correlation of the lists (those of two or more elements).
   */
  agreement: { pairs: number; identical: number | null; meanAbsDiff: number | null; rankCorrelation: number | null };
}

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** Mean and the normal 95% interval of a per-pair difference from its Σ and Σ² over n pairs. */
function paired(n: number, sum: number, sq: number): { diff: number | null; ci95: [number | null, number | null] } {
  if (n === 0) return { diff: null, ci95: [null, null] };
  const mean = sum / n;
  const variance = n > 1 ? Math.max(0, (sq - n * mean * mean) / (n - 1)) : NaN;
  const half = Z95 * Math.sqrt(variance / n);
  return { diff: mean, ci95: [finite(mean - half), finite(mean + half)] };
}

/** Ranks 1…n, ties given their average rank. */
function ranks(xs: readonly number[]): number[] {
  const order = xs.map((x, i) => ({ x, i })).sort((a, b) => a.x - b.x);
  const out = new Array<number>(xs.length);
  for (let k = 0; k < order.length; ) {
    let end = k;
    while (end + 1 < order.length && order[end + 1]!.x === order[k]!.x) end++;
    for (let j = k; j <= end; j++) out[order[j]!.i] = (k + end) / 2 + 1;
    k = end + 1;
  }
  return out;
}

/** Spearman's ρ: Pearson's correlation of the ranks; NaN when either list is constant. */
export function spearman(a: readonly number[], b: readonly number[]): number {
  const [ra, rb] = [ranks(a), ranks(b)];
  const n = a.length;
  const [ma, mb] = [ra.reduce((s, x) => s + x, 0) / n, rb.reduce((s, x) => s + x, 0) / n];
  let [sab, saa, sbb] = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    sab += (ra[i]! - ma) * (rb[i]! - mb);
    saa += (ra[i]! - ma) ** 2;
    sbb += (rb[i]! - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

const numbers = (v: unknown): number[] | null =>
  typeof v === 'number' ? [v] : Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : null;

export function shadowResults(route: string, f: ShadowFacts): ShadowResults {
  const n = f.pairs;
  const rate = (k: number) => (n > 0 ? k / n : null);
  let [compared, identical, madSum, madPairs, rhoSum, rhoPairs] = [0, 0, 0, 0, 0, 0];
  for (const o of f.outputs) {
    if (o.primary === undefined || o.shadow === undefined) continue;
    compared++;
    if (JSON.stringify(o.primary) === JSON.stringify(o.shadow)) identical++;
    const [a, b] = [numbers(o.primary), numbers(o.shadow)];
    if (a === null || b === null || a.length !== b.length || a.length === 0) continue;
    madSum += a.reduce((s, x, i) => s + Math.abs(x - b[i]!), 0) / a.length;
    madPairs++;
    const rho = a.length > 1 ? spearman(a, b) : NaN;
    if (Number.isFinite(rho)) {
      rhoSum += rho;
      rhoPairs++;
    }
  }
  return {
    route,
    pairs: n,
    primary: { errorRate: rate(f.primaryErrors), meanLatencyMs: n > 0 ? f.primaryLatencySum / n : null },
    shadow: { errorRate: rate(f.shadowErrors), meanLatencyMs: n > 0 ? f.shadowLatencySum / n : null },
    errorRateDiff: paired(n, f.errorDiffSum, f.errorDiffSq),
    latencyDiffMs: paired(n, f.latencyDiffSum, f.latencyDiffSq),
    agreement: {
      pairs: compared,
      identical: compared > 0 ? identical / compared : null,
      meanAbsDiff: madPairs > 0 ? madSum / madPairs : null,
      rankCorrelation: rhoPairs > 0 ? rhoSum / rhoPairs : null,
    },
  };
}
