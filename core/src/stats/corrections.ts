import { normalQuantile } from './distributions.ts';

/** SPEC §11: how p-values are corrected over an experiment's non-guardrail metrics × treatments. */
export type Correction = 'none' | 'holm' | 'bh';

/**
 * Adjusted p-values, in the input's order, equal to statsmodels' `multipletests` (`holm`,
 * `fdr_bh`). A p-value that is NaN is not a test: it stays NaN and does not count in m.
 */
export function adjustPValues(pValues: readonly number[], method: Correction): number[] {
  const tests = pValues.map((p, i) => ({ p, i })).filter((t) => !Number.isNaN(t.p));
  const out = pValues.map((p) => (Number.isNaN(p) ? NaN : p));
  const m = tests.length;
  if (method === 'none' || m === 0) return out;
  tests.sort((a, b) => a.p - b.p || a.i - b.i);
  if (method === 'holm') {
    // Step-down: the k-th smallest (from 0) times m − k, never below the one before.
    let running = 0;
    tests.forEach((t, k) => {
      running = Math.max(running, Math.min(1, (m - k) * t.p));
      out[t.i] = running;
    });
  } else {
    // Step-up: the k-th smallest (from 1) times m / k, never above the one after.
    let running = 1;
    for (let k = m; k >= 1; k--) {
      const t = tests[k - 1]!;
      running = Math.min(running, (m / k) * t.p);
      out[t.i] = Math.min(1, running);
    }
  }
  return out;
}

/**
 * A two-sided normal interval widened to match a corrected p-value: at the level α·p/p_adj that
 * the correction gives this test, so it excludes 0 exactly when p_adj < α (a normal test's p).
 */
export function widenedInterval(estimate: number, se: number, pValue: number, adjustedPValue: number, alpha = 0.05): [number, number] {
  if (![estimate, se, pValue, adjustedPValue].every(Number.isFinite)) return [NaN, NaN];
  const ratio = adjustedPValue > 0 ? Math.min(1, pValue / adjustedPValue) : 1;
  const z = normalQuantile(1 - (alpha * ratio) / 2);
  return [estimate - z * se, estimate + z * se];
}
