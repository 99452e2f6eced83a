import type { Experiment } from '@bunryu/core';

export interface ParamConflict {
  experiment: string;
  param: string;
}

/** The parameter keys any variant of an experiment sets. */
export function paramKeys(e: Pick<Experiment, 'variants'>): Set<string> {
  const keys = new Set<string>();
  for (const v of e.variants) for (const k of Object.keys(v.params)) keys.add(k);
  return keys;
}

/**
 * SPEC §3: running experiments on one route in different layers must not set the same parameter
 * key, since the one later in key order would silently overwrite the other's value. Experiments
 * of one layer never meet a unit together, so they may share keys.
 */
export function findParamConflict(candidate: Experiment, experiments: readonly Experiment[]): ParamConflict | undefined {
  const mine = paramKeys(candidate);
  const others = experiments
    .filter((e) => e.status === 'running' && e.route === candidate.route && e.layer !== candidate.layer && e.key !== candidate.key)
    .sort((a, b) => (a.key < b.key ? -1 : 1));
  for (const other of others) {
    for (const param of paramKeys(other)) if (mine.has(param)) return { experiment: other.key, param };
  }
  return undefined;
}
