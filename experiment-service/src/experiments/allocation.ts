import { BUCKETS, type Allocation, type Experiment, type ExperimentStatus } from '@bunryu/core';

/** Statuses whose allocation is live: they hold their range of the layer. */
export const HOLDS_RANGE: readonly ExperimentStatus[] = ['running', 'paused'];
/** Statuses whose range new experiments avoid when they can (a draft's range is a reservation). */
export const RESERVES_RANGE: readonly ExperimentStatus[] = ['draft', 'running', 'paused'];

export function overlaps(a: Allocation, b: Allocation): boolean {
  return a.start < b.end && b.start < a.end;
}

/** The lowest range of `width` buckets that overlaps none of `taken`, if there is one. */
export function firstFreeRange(taken: readonly Allocation[], width: number): Allocation | undefined {
  if (width < 1 || width > BUCKETS) return undefined;
  const sorted = [...taken].sort((a, b) => a.start - b.start);
  let start = 0;
  for (const t of sorted) {
    if (t.start - start >= width) break;
    start = Math.max(start, t.end);
  }
  return start + width <= BUCKETS ? { start, end: start + width } : undefined;
}

/** Other experiments of `layer` whose status is one of `statuses`. */
export function layerMembers(experiments: readonly Experiment[], layer: string, self: string, statuses: readonly ExperimentStatus[]): Experiment[] {
  return experiments.filter((e) => e.layer === layer && e.key !== self && statuses.includes(e.status));
}

/** The first experiment holding a range of the layer that overlaps `allocation`. */
export function overlapping(experiments: readonly Experiment[], layer: string, self: string, allocation: Allocation): Experiment | undefined {
  return layerMembers(experiments, layer, self, HOLDS_RANGE).find((e) => overlaps(e.allocation, allocation));
}
