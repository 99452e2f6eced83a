import { logBeta, regularizedBeta } from './distributions.ts';

/**
 * Two-sided exact sign test of wins against losses (ties left out): twice the probability of a
 * split at least as uneven under a fair coin, at most 1. With no wins and no losses it is 1.
 */
export function signTest(wins: number, losses: number): number {
  const n = wins + losses;
  if (n === 0) return 1;
  const k = Math.min(wins, losses);
  // P(X ≤ k) for X ~ Binomial(n, ½) is I_½(n − k, k + 1).
  return Math.min(1, 2 * regularizedBeta(0.5, n - k, k + 1));
}

/**
 * The always-valid version: a mixture sequential probability ratio test of a fair coin against a
 * win probability drawn from Beta(c, c). Its Bayes factor after w wins and l losses is
 * B(c + w, c + l) / B(c, c) · 2^(w + l), a martingale under the null, so 1 / (its running maximum)
 * is a p-value valid at every look (Ville's inequality). This returns 1 / the factor at this look;
 * the caller keeps the running minimum over looks. c = 1 (a uniform prior) unless given: a larger
 * c bets on preferences close to one half.
 */
export function sequentialSignPValue(wins: number, losses: number, concentration = 1): number {
  const c = concentration;
  const logFactor = logBeta(c + wins, c + losses) - logBeta(c, c) + (wins + losses) * Math.LN2;
  return Math.min(1, Math.exp(-logFactor));
}
