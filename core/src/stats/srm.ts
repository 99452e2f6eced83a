import { chiSquareSf } from './distributions.ts';

/** SPEC §6: a sample-ratio mismatch is flagged when the goodness-of-fit p-value is below this. */
export const SRM_THRESHOLD = 0.001;

export interface SrmResult {
  chi2: number;
  /** Degrees of freedom: variants with a positive weight, minus one. */
  df: number;
  pValue: number;
  mismatch: boolean;
}

/**
 * Sample-ratio mismatch: Pearson's chi-square goodness of fit of the units per variant against the
 * configured weights (any scale; percentages in practice). A variant with weight 0 that still has
 * units is a mismatch by definition.
 */
export function srm(counts: readonly number[], weights: readonly number[], threshold = SRM_THRESHOLD): SrmResult {
  if (counts.length !== weights.length) throw new RangeError(`srm: ${counts.length} counts but ${weights.length} weights`);
  const total = counts.reduce((s, c) => s + c, 0);
  const totalWeight = weights.reduce((s, w) => s + w, 0);
  let chi2 = 0;
  let categories = 0;
  for (let i = 0; i < counts.length; i++) {
    const w = weights[i]!;
    const observed = counts[i]!;
    if (w <= 0) {
      if (observed > 0) chi2 = Infinity;
      continue;
    }
    categories++;
    const expected = (total * w) / totalWeight;
    const d = observed - expected;
    chi2 += (d * d) / expected;
  }
  const df = categories - 1;
  if (total === 0 || df < 1) return { chi2: total === 0 ? 0 : chi2, df: Math.max(df, 0), pValue: chi2 === Infinity ? 0 : 1, mismatch: chi2 === Infinity };
  const pValue = chi2 === Infinity ? 0 : chiSquareSf(chi2, df);
  return { chi2, df, pValue, mismatch: pValue < threshold };
}

/**
 * One check over independent groups of units, each split by its own weights (the phases of a
 * ramped experiment): the groups' chi-square statistics and degrees of freedom add up. A group
 * with a unit in a zero-weight variant is a mismatch by definition, as in `srm`.
 */
export function srmAcrossGroups(groups: readonly { counts: readonly number[]; weights: readonly number[] }[], threshold = SRM_THRESHOLD): SrmResult {
  let chi2 = 0;
  let df = 0;
  for (const g of groups) {
    const r = srm(g.counts, g.weights, threshold);
    chi2 += r.chi2;
    if (g.counts.some((c) => c > 0)) df += r.df;
  }
  if (chi2 === Infinity) return { chi2, df, pValue: 0, mismatch: true };
  if (df < 1) return { chi2, df, pValue: 1, mismatch: false };
  const pValue = chiSquareSf(chi2, df);
  return { chi2, df, pValue, mismatch: pValue < threshold };
}
