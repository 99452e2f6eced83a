import type { Experiment } from './schemas.ts';

/** One phase of a running experiment: weights that held from `startedAt` (ms) until the next phase. */
export interface Phase {
  startedAt: number;
  /** Null for a phase whose weights were not recorded (an experiment ramped before phases were kept). */
  weights: Readonly<Record<string, number>> | null;
}

const weightsOf = (e: Pick<Experiment, 'variants'>) => Object.fromEntries(e.variants.map((v) => [v.key, v.weight]));

/**
 * The experiment's phases, oldest first (ADR 0009); none before it starts. An experiment stored
 * before phases were kept knows only its last weight change: the weights before it are unknown.
 */
export function experimentPhases(e: Pick<Experiment, 'variants' | 'phases' | 'startedAt' | 'weightsChangedAt'>): Phase[] {
  if (e.phases && e.phases.length > 0) return e.phases.map((p) => ({ startedAt: Date.parse(p.startedAt), weights: p.weights }));
  const started = e.startedAt ? Date.parse(e.startedAt) : 0;
  const changed = e.weightsChangedAt ? Date.parse(e.weightsChangedAt) : NaN;
  if (changed > started) return [{ startedAt: started, weights: null }, { startedAt: changed, weights: weightsOf(e) }];
  return e.startedAt ? [{ startedAt: started, weights: weightsOf(e) }] : [];
}

/** The experiment's `phases` with one more, starting `at` with its current weights (call after a weight change). */
export function withNewPhase(before: Experiment, after: Pick<Experiment, 'variants'>, at: string): NonNullable<Experiment['phases']> {
  const kept = before.phases ?? experimentPhases(before).map((p) => ({ startedAt: new Date(p.startedAt).toISOString(), weights: p.weights ? { ...p.weights } : null }));
  return [...kept, { startedAt: at, weights: weightsOf(after) }];
}
