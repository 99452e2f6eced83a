import type { VersionMetadata } from '../models/model-metadata.ts';

export type Faults = NonNullable<VersionMetadata['faults']>;

export interface FaultVerdict {
  fail: boolean;
  delayMs: number;
}

const NONE: FaultVerdict = { fail: false, delayMs: 0 };

/**
 * Decides which answers of a version with `faults` fail or are slow. Spread evenly rather than
 * drawn at random (the n-th answer fails when ⌊n·rate⌋ steps up), so that a share of 0.1 is one
 * answer in ten in any run of ten: a drill's timings then compare across runs and a test can
 * count exactly.
 */
export class FaultInjector {
  private readonly served = new Map<string, number>();

  next(model: string, version: string, faults: Faults | undefined): FaultVerdict {
    if (!faults || (faults.errorRate === 0 && (faults.slowRate === 0 || faults.delayMs === 0))) return NONE;
    const key = `${model}/${version}`;
    const n = (this.served.get(key) ?? 0) + 1;
    this.served.set(key, n);
    const hits = (rate: number) => rate > 0 && Math.floor(n * rate) !== Math.floor((n - 1) * rate);
    return { fail: hits(faults.errorRate), delayMs: hits(faults.slowRate) ? faults.delayMs : 0 };
  }
}
