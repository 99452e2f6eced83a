import { normalCdf, normalPdf } from './distributions.ts';

/**
 * A one-sided always-valid confidence bound from the normal-mixture SPRT (SPEC §10), for the
 * guardrails of a guarded rollout.
 *
 * Same model as `sequential.ts`: the estimate θ̂ of a difference is N(θ, v), v = se². To bound θ
 * from below, test every θ0 against alternatives above it, mixing the alternative over a
 * half-normal: δ = θ − θ0 ~ |N(0, τ²)|. With x = θ̂ − θ0 the mixture likelihood ratio is
 *
 *   Λ(θ0) = 2 Φ(z) · sqrt(v / (v + τ²)) · exp(z² / 2),   z = x τ / sqrt(v (v + τ²))
 *
 * (the two-sided mSPRT's Λ times 2Φ(z); integrate exp(δx/v − δ²/2v) against the half-normal
 * density and complete the square). At the true θ it is a non-negative martingale with mean 1
 * (a mixture of likelihood ratios), so by Ville's inequality P(∃ look: Λ(θ) ≥ 1/α) ≤ α. Λ(θ0)
 * falls as θ0 rises (Φ(z)e^{z²/2} increases in z), so {θ0 : Λ(θ0) < 1/α} is a half-line
 * (L, ∞) that holds θ at every look at once with probability ≥ 1 − α: L is the always-valid
 * lower bound, and harm is declared the first time L exceeds the margin.
 *
 * Why not the two-sided confidence sequence at level α: it is valid one-sided too, but it
 * spends half its error on the side a guardrail does not care about; for effects in the
 * harmful direction Φ(z) ≈ 1 and this bound is the two-sided sequence at level 2α, a narrower
 * bound for the same guarantee.
 *
 * The upper bound is the mirror image: U = θ̂ + the same width.
 */

/** The mixing SD of a guardrail as a fraction of the per-unit SD (τ = φσ, as in `sequential.ts`). */
export const GUARDRAIL_MIXING_SD = 0.2;

/** ln(2Φ(z)) + z²/2, increasing in z; and its derivative. */
function logHalfMixture(z: number): { value: number; slope: number } {
  const cdf = normalCdf(z);
  return { value: Math.LN2 + Math.log(cdf) + 0.5 * z * z, slope: normalPdf(z) / cdf + z };
}

/** The z at which the one-sided mixture reaches 1/level: ln 2Φ(z) + z²/2 = ln(1/level) + ½ ln((v + τ²)/v). */
function criticalZ(target: number): number {
  // Safeguarded Newton: the function is increasing and convex enough that a few steps do.
  let lo = -40;
  let hi = Math.max(1, Math.sqrt(2 * Math.max(target, 0)) + 1);
  let z = Math.sqrt(2 * Math.max(target - Math.LN2, 0));
  for (let i = 0; i < 60; i++) {
    const { value, slope } = logHalfMixture(z);
    const f = value - target;
    if (Math.abs(f) < 1e-12) return z;
    if (f > 0) hi = z;
    else lo = z;
    let next = z - f / slope;
    if (!(next > lo && next < hi)) next = (lo + hi) / 2;
    z = next;
  }
  return z;
}

/**
 * The half-width w of the one-sided always-valid bound at `level`: the lower bound is
 * estimate − w, the upper estimate + w. Infinite when τ² is 0 (a mixture with no alternative
 * gathers no evidence); 0 when v is 0 and τ² is not (the estimate is exact).
 */
export function oneSidedBoundWidth(variance: number, tau2: number, level: number): number {
  if (Number.isNaN(variance) || Number.isNaN(tau2) || !(level > 0 && level < 1)) return NaN;
  if (!(tau2 > 0)) return variance === 0 ? 0 : Infinity;
  if (variance === 0) return 0;
  const target = -Math.log(level) + 0.5 * Math.log((variance + tau2) / variance);
  return (criticalZ(target) * Math.sqrt(variance * (variance + tau2))) / Math.sqrt(tau2);
}

/** The always-valid lower (side 'lower') or upper bound of θ at `level`. */
export function oneSidedBound(estimate: number, variance: number, tau2: number, level: number, side: 'lower' | 'upper'): number {
  const w = oneSidedBoundWidth(variance, tau2, level);
  return side === 'lower' ? estimate - w : estimate + w;
}
