import { BUILT_IN_METRICS, MetricDefinition, type Experiment } from '@bunryu/core';
import type { MetricSpec } from '../metrics-store/metrics-store.ts';

export type MetricType = 'proportion' | 'mean' | 'ratio';

export interface ResolvedMetric {
  key: string;
  type: MetricType;
  spec: MetricSpec;
}

/**
 * A metric of the catalogue (`/v1/config` `metrics`, keyed by metric key) as the store computes it.
 * Built-ins come from the gateway's exposures (SPEC §5); others from their definition.
 */
export function resolveMetric(key: string, catalogue: Readonly<Record<string, unknown>>): ResolvedMetric | undefined {
  if (key === 'error_rate') return { key, type: BUILT_IN_METRICS.error_rate.type, spec: { kind: 'error_rate' } };
  if (key === 'latency_ms') return { key, type: BUILT_IN_METRICS.latency_ms.type, spec: { kind: 'latency_ms' } };
  const entry = catalogue[key];
  if (!entry || typeof entry !== 'object') return undefined;
  // The catalogue entries carry `key`/`builtIn` besides the definition.
  const { key: _key, builtIn: _builtIn, ...definition } = entry as Record<string, unknown>;
  const parsed = MetricDefinition.safeParse(definition);
  if (!parsed.success) return undefined;
  const d = parsed.data;
  switch (d.type) {
    case 'proportion':
      return { key, type: 'proportion', spec: { kind: 'proportion', event: d.event } };
    case 'mean':
      return { key, type: 'mean', spec: { kind: 'mean', event: d.event } };
    case 'ratio':
      return { key, type: 'ratio', spec: { kind: 'ratio', numerator: d.numerator, denominator: d.denominator } };
  }
}

/**
 * The metrics analysed for an experiment (SPEC §4): its primary and secondary metrics, its
 * guardrails, and the built-in `error_rate` and `latency_ms`, each once. Keys the catalogue does
 * not define are returned apart so the caller can say so.
 */
export function experimentMetrics(
  experiment: Pick<Experiment, 'metrics'>,
  catalogue: Readonly<Record<string, unknown>>,
): { metrics: ResolvedMetric[]; unknown: string[] } {
  const keys = [experiment.metrics.primary, ...(experiment.metrics.secondary ?? []), ...experiment.metrics.guardrails, 'error_rate', 'latency_ms'].filter(
    (k, i, all): k is string => typeof k === 'string' && all.indexOf(k) === i,
  );
  const metrics: ResolvedMetric[] = [];
  const unknown: string[] = [];
  for (const key of keys) {
    const m = resolveMetric(key, catalogue);
    if (m) metrics.push(m);
    else unknown.push(key);
  }
  return { metrics, unknown };
}

/** The metrics a multiple-testing correction runs over (SPEC §11): the primary and secondary ones. */
export function correctedMetrics(experiment: Pick<Experiment, 'metrics'>): Set<string> {
  const guardrails = new Set(experiment.metrics.guardrails);
  return new Set([experiment.metrics.primary, ...(experiment.metrics.secondary ?? [])].filter((k): k is string => typeof k === 'string' && !guardrails.has(k)));
}
