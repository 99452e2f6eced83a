import { z } from 'zod';

/** The building blocks every schema shares; a module of their own so the rollout plan can use them without an import circle. */

export const KEY_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export const Key = z.string().regex(KEY_PATTERN, 'must match ^[a-z0-9][a-z0-9._-]{0,63}$');

/** Percentages with at most two decimals; compared in hundredths so 33.33+33.33+33.34 sums exactly. */
export const Weight = z
  .number()
  .min(0)
  .max(100)
  .refine((w) => Math.abs(w * 100 - Math.round(w * 100)) < 1e-6, 'at most two decimals');

export function hundredths(weight: number): number {
  return Math.round(weight * 100);
}
