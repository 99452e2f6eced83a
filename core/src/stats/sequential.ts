/**
 * Always-valid p-values (SPEC §6) from the mixture sequential probability ratio test, mSPRT
 * (Robbins 1970; Johari, Koomen, Pekelis & Walsh, "Peeking at A/B tests", KDD 2017 / Operations
 * Research 2022 — the test behind Optimizely's Stats Engine).
 *
 * Model: the estimate θ̂ of the difference is N(θ, v) with v = se². H0: θ = 0. Under H1 θ is drawn
 * from the mixing distribution N(0, τ²). The likelihood ratio of the mixture against H0 is
 *
 *   Λ = sqrt(v / (v + τ²)) · exp( τ² θ̂² / (2 v (v + τ²)) )
 *
 * which is a non-negative martingale under H0, so by Ville's inequality P(sup_n Λ_n ≥ 1/α) ≤ α:
 * p_n = min(1, 1/Λ_n) can be watched at every peek, and the running minimum over peeks is the
 * always-valid p-value. One p_n alone is larger than that minimum, hence also valid.
 *
 * The mixing variance τ² sets which effects the test detects fastest (those with θ² near τ²
 * once v has shrunk below τ²). bunryu states it in units of the metric's per-unit standard
 * deviation σ: τ = φσ with φ = DEFAULT_MIXING_SD (0.05). At 10⁴ units per arm this asks for
 * |z| ≈ 3.0 to reach p < 0.05 (the fixed-horizon test asks 1.96), at 10⁶ per arm |z| ≈ 3.6;
 * effects of a few percent of σ are the realistic size in product experiments. Because σ is
 * estimated from the data, τ² moves slightly between peeks; the simulation test in core shows the
 * false-positive rate stays below α under continuous peeking.
 */

/** φ: the mixing standard deviation as a fraction of the per-unit standard deviation. */
export const DEFAULT_MIXING_SD = 0.05;

/** τ² for a metric whose per-unit variances are `controlVariance` and `treatmentVariance`. */
export function mixingVariance(controlVariance: number, treatmentVariance: number, mixingSd = DEFAULT_MIXING_SD): number {
  return mixingSd * mixingSd * ((controlVariance + treatmentVariance) / 2);
}

/**
 * min(1, 1/Λ) for the estimate `diff` with sampling variance `variance` (se²) and mixing variance
 * `tau2`. Callers watching over time keep the running minimum (`alwaysValid`).
 */
export function sequentialPValue(diff: number, variance: number, tau2: number): number {
  if (Number.isNaN(diff) || Number.isNaN(variance) || Number.isNaN(tau2)) return NaN;
  if (!(tau2 > 0)) return 1;
  if (variance === 0) return diff === 0 ? 1 : 0;
  const logLambda = 0.5 * Math.log(variance / (variance + tau2)) + (tau2 * diff * diff) / (2 * variance * (variance + tau2));
  return Math.min(1, Math.exp(-logLambda));
}

/** Running minimum of successive sequential p-values: the always-valid p-value at each peek. */
export function alwaysValid(pValues: readonly number[]): number[] {
  const out: number[] = [];
  let min = 1;
  for (const p of pValues) {
    if (!Number.isNaN(p)) min = Math.min(min, p);
    out.push(min);
  }
  return out;
}
