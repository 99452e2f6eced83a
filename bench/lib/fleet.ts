/**
 * A busy deployment's config for the benches (SPEC §7 "1,000 experiments"): 1,000 running
 * experiments over 50 routes, in 100 layers of 10 with 10% each, so every layer is full.
 */
import type { Experiment, Route } from '@bunryu/core';

export const FLEET_EXPERIMENTS = 1000;
export const FLEET_ROUTES = 50;

/** `upstream(i)`: where route i forwards (the experiment-service never calls it). */
export function fleet(upstream: (route: number) => string = (i) => `http://127.0.0.1:8082/v1/models/m${i}/predict`): { routes: Route[]; experiments: Experiment[] } {
  const at = '2026-01-01T00:00:00.000Z';
  const routes = Array.from({ length: FLEET_ROUTES }, (_, i): Route => ({
    key: `route-${i}`,
    upstream: upstream(i),
    path: '/',
    defaultParams: { version: '1' },
    timeoutMs: 1000,
    updatedAt: at,
  }));
  const experiments = Array.from({ length: FLEET_EXPERIMENTS }, (_, i): Experiment => ({
    key: `exp-${String(i).padStart(4, '0')}`,
    name: `Experiment ${i}: does model variant ${i} lift clicks?`,
    hypothesis: 'The new ranking model raises the click-through rate by at least one percent.',
    route: `route-${i % FLEET_ROUTES}`,
    layer: `layer-${i % 100}`,
    trafficPercent: 10,
    allocation: { start: Math.floor(i / 100) * 1000, end: Math.floor(i / 100) * 1000 + 1000 },
    salt: `s${i}`,
    targeting: [{ attribute: 'country', op: 'in', value: ['JP', 'US', 'DE'] }],
    variants: [
      { key: 'control', weight: 50, params: { [`p${i}`]: 'a', version: '1' } },
      { key: 'treatment', weight: 50, params: { [`p${i}`]: 'b', version: '2' } },
    ],
    overrides: { 'qa-user-1': 'treatment' },
    metrics: { primary: 'error_rate', guardrails: ['latency_ms'] },
    status: 'running',
    version: 1,
    createdAt: at,
    updatedAt: at,
    startedAt: at,
  }));
  return { routes, experiments };
}
