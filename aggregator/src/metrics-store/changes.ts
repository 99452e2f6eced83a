import type { MetricAggregate, MetricSpec, SeriesRow } from './metrics-store.ts';

/** A decimal string (`-12.5`) as an integer in units of 10^-scale: exact. */
export function decimalUnits(text: unknown, scale: number): bigint {
  const s = String(text ?? '0');
  const negative = s.startsWith('-');
  const [whole = '0', fraction = ''] = (negative ? s.slice(1) : s).split('.');
  const units = BigInt(whole + fraction.padEnd(scale, '0').slice(0, scale));
  return negative ? -units : units;
}

/**
 * Exact sums of one metric's per-unit changes (Σ at scale 12, squares and products at 24), or
 * their running totals over a variant's units.
 */
export interface Sums {
  units: number;
  count: number;
  sum: bigint;
  sq: bigint;
  dsum: bigint;
  dsq: bigint;
  xd: bigint;
  /** CUPED's covariate, when asked for: Σx (scale 12), Σx² and Σxy (scale 24). */
  cx?: { sum: bigint; sq: bigint; xy: bigint };
}

export const newSums = (): Sums => ({ units: 0, count: 0, sum: 0n, sq: 0n, dsum: 0n, dsq: 0n, xd: 0n });

export function addSums(into: Sums, s: Sums): void {
  into.units += s.units;
  into.count += s.count;
  into.sum += s.sum;
  into.sq += s.sq;
  into.dsum += s.dsum;
  into.dsq += s.dsq;
  into.xd += s.xd;
  if (s.cx) {
    into.cx ??= { sum: 0n, sq: 0n, xy: 0n };
    into.cx.sum += s.cx.sum;
    into.cx.sq += s.cx.sq;
    into.cx.xy += s.cx.xy;
  }
}

/** What changed in one (phase, variant) at one bucket: the units appearing and the sums of their values' changes. */
export interface Change {
  /** With SeriesQuery.slice: the slice these units are in. */
  slice?: string;
  bucket: number;
  phase: number;
  variant: string;
  units: number;
  moved: number;
  exposures: number;
  lastTs: number;
  metrics: Sums[];
}

const E12 = 1e12;
const E24 = 1e24;

/** Sample variance (n − 1) of n values from Σx and Σx²: n·Σx² − (Σx)² is formed exactly, nothing cancels. */
function variance(n: number, sum: bigint, sq: bigint): number {
  return n > 1 ? Number(BigInt(n) * sq - sum * sum) / E24 / (n * (n - 1)) : NaN;
}

/**
 * Mean, variance and covariance from exact sums: the answer depends only on the data, not on the
 * order it was summed in (replays, merges and threads change that order).
 */
function aggregate(s: Sums, ratio: boolean): MetricAggregate {
  const total = Number(s.sum) / E12;
  const a: MetricAggregate = { units: s.units, count: s.count, sum: total, mean: s.units > 0 ? total / s.units : NaN, variance: variance(s.units, s.sum, s.sq) };
  if (ratio) {
    const den = Number(s.dsum) / E12;
    a.denSum = den;
    a.denMean = s.units > 0 ? den / s.units : NaN;
    a.denVariance = variance(s.units, s.dsum, s.dsq);
    a.covariance = s.units > 1 ? Number(BigInt(s.units) * s.xd - s.sum * s.dsum) / E24 / (s.units * (s.units - 1)) : NaN;
  }
  if (s.cx) a.covariate = { sumX: Number(s.cx.sum) / E12, sumX2: Number(s.cx.sq) / E24, sumXY: Number(s.cx.xy) / E24 };
  return a;
}

/**
 * The figures at each bucket end: each (phase, variant)'s changes accumulated up to it, from the
 * first bucket it appears in.
 */
export function accumulate(changes: readonly Change[], metrics: readonly MetricSpec[], buckets: number): SeriesRow[] {
  interface Running extends Omit<Change, 'bucket'> {
    first: number;
    at: Map<number, Change>;
  }
  const running = new Map<string, Running>();
  for (const c of changes) {
    const id = JSON.stringify([c.phase, c.variant]);
    let r = running.get(id);
    if (!r) {
      r = { phase: c.phase, variant: c.variant, units: 0, moved: 0, exposures: 0, lastTs: 0, metrics: metrics.map(newSums), first: c.bucket, at: new Map() };
      running.set(id, r);
    }
    r.first = Math.min(r.first, c.bucket);
    r.at.set(c.bucket, c);
  }
  const ordered = [...running.values()].sort((a, b) => a.phase - b.phase || (a.variant < b.variant ? -1 : a.variant > b.variant ? 1 : 0));
  const out: SeriesRow[] = [];
  for (let bucket = 0; bucket < buckets; bucket++) {
    for (const r of ordered) {
      if (bucket < r.first) continue;
      const c = r.at.get(bucket);
      if (c) {
        r.units += c.units;
        r.moved += c.moved;
        r.exposures += c.exposures;
        r.lastTs = Math.max(r.lastTs, c.lastTs);
        c.metrics.forEach((m, j) => addSums(r.metrics[j]!, m));
      }
      out.push({
        bucket,
        phase: r.phase,
        variant: r.variant,
        units: r.units,
        moved: r.moved,
        exposures: r.exposures,
        lastTs: r.lastTs,
        metrics: r.metrics.map((m, j) => aggregate(m, metrics[j]!.kind === 'ratio')),
      });
    }
  }
  return out;
}
