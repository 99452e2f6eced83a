import { createError } from '@bunryu/core';
import { OPEN_END } from '../metrics-store/metrics-store.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Interval widths the automatic choice picks from. */
const STEPS = [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 7 * DAY];

/** Points an automatic interval aims at, and the most an explicit one may ask for. */
export const AUTO_POINTS = 60;
export const MAX_POINTS = 1000;

export interface BucketPlan {
  step: number;
  /** Nominal end of each bucket (ms); the label of its point. */
  labels: number[];
  /** What the store filters on: the nominal ends, except an open last end that takes everything. */
  ends: number[];
}

const UNITS: Record<string, number> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: DAY };

/** `90s`, `15m`, `1h`, `1d` → ms; throws a 400 naming `interval` otherwise. */
export function parseInterval(text: string): number {
  const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(text.trim());
  const ms = m ? Number(m[1]) * UNITS[m[2]!]! : NaN;
  if (!(ms >= SECOND)) {
    throw createError('BUNRYU_VALIDATION', 'interval: must be a duration of at least 1s such as 60s, 15m, 1h or 1d', {
      fields: [{ path: 'interval', message: 'must be a duration of at least 1s such as 60s, 15m, 1h or 1d' }],
    });
  }
  return ms;
}

export function formatInterval(ms: number): string {
  for (const [unit, size] of [['d', DAY], ['h', HOUR], ['m', MINUTE], ['s', SECOND]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * Buckets from the first exposure to the last one: the smallest standard width giving at most
 * AUTO_POINTS points, or `step` when asked. The last bucket is open-ended so that the final point
 * holds every event, including ones stamped after the last exposure.
 */
export function planBuckets(span: { firstTs: number; lastTs: number }, step?: number): BucketPlan {
  const count = (s: number) => Math.max(1, Math.ceil((span.lastTs + 1 - Math.floor(span.firstTs / s) * s) / s));
  const width = step ?? STEPS.find((s) => count(s) <= AUTO_POINTS) ?? STEPS.at(-1)!;
  const n = count(width);
  if (n > MAX_POINTS) {
    throw createError('BUNRYU_VALIDATION', `interval: gives ${n} points, more than ${MAX_POINTS}; ask for a wider one`, {
      fields: [{ path: 'interval', message: `gives ${n} points, more than ${MAX_POINTS}` }],
    });
  }
  const start = Math.floor(span.firstTs / width) * width;
  const labels = Array.from({ length: n }, (_, k) => start + (k + 1) * width);
  return { step: width, labels, ends: labels.map((e, k) => (k === n - 1 ? OPEN_END : e)) };
}
