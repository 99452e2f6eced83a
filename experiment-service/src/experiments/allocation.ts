import { BUCKETS, createError, hundredths, validationError, type Allocation, type Experiment, type ExperimentDefinition, type ExperimentStatus } from '@bunryu/core';
import type { StoreState } from '../store/experiment-store.ts';

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

/**
 * The experiment's range in its layer. An explicit `allocation` is taken as given; otherwise a
 * range of `trafficPercent` (default 100) is kept from before when still free, or the first free
 * one is chosen, preferring ranges no draft has reserved.
 */
export function placeInLayer(
  def: ExperimentDefinition,
  layer: string,
  state: StoreState,
  current: Experiment | undefined,
): { allocation: Allocation; trafficPercent: number } {
  const self = def.key;
  if (def.allocation) {
    const width = def.allocation.end - def.allocation.start;
    if (def.trafficPercent !== undefined && hundredths(def.trafficPercent) !== width) {
      throw validationError([{ path: ['trafficPercent'], message: `must be ${width / 100} to match allocation, or be left out` }]);
    }
    assertFree(state, layer, self, def.allocation);
    return { allocation: def.allocation, trafficPercent: width / 100 };
  }
  const width = hundredths(def.trafficPercent ?? 100);
  if (width < 1) throw validationError([{ path: ['trafficPercent'], message: 'must be at least 0.01' }]);
  const trafficPercent = width / 100;
  const kept = current?.allocation;
  if (current && kept && current.layer === layer && kept.end - kept.start === width && !overlapping(state.experiments, layer, self, kept)) {
    return { allocation: kept, trafficPercent };
  }
  const ranges = (statuses: readonly ExperimentStatus[]) => layerMembers(state.experiments, layer, self, statuses).map((e) => e.allocation);
  const allocation = firstFreeRange(ranges(RESERVES_RANGE), width) ?? firstFreeRange(ranges(HOLDS_RANGE), width);
  if (!allocation) {
    const holders = layerMembers(state.experiments, layer, self, HOLDS_RANGE);
    throw createError('BUNRYU_LAYER_FULL', `Layer ${layer} has no free range of ${trafficPercent}% (held by ${holders.map((e) => e.key).join(', ')})`, {
      layer,
      trafficPercent,
      heldBy: holders.map((e) => ({ experiment: e.key, allocation: e.allocation })),
    });
  }
  return { allocation, trafficPercent };
}

export function assertFree(state: StoreState, layer: string, self: string, allocation: Allocation): void {
  const other = overlapping(state.experiments, layer, self, allocation);
  if (other) {
    throw createError(
      'BUNRYU_LAYER_FULL',
      `Buckets ${allocation.start}-${allocation.end} of layer ${layer} overlap experiment ${other.key} (${other.allocation.start}-${other.allocation.end})`,
      { layer, experiment: other.key, allocation: other.allocation },
    );
  }
}
