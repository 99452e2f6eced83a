import type { ConfigSnapshot, Experiment, Route } from '@bunryu/core';

const T = '2026-01-01T00:00:00.000Z';

export function route(key: string, upstream: string, extra: Partial<Route> = {}): Route {
  return { key, upstream, path: '/', defaultParams: {}, timeoutMs: 1000, updatedAt: T, ...extra };
}

export function experiment(key: string, routeKey: string, extra: Partial<Experiment> = {}): Experiment {
  return {
    key,
    route: routeKey,
    layer: key,
    allocation: { start: 0, end: 10_000 },
    trafficPercent: 100,
    salt: '',
    targeting: [],
    variants: [
      { key: 'control', weight: 50, params: { version: '1' } },
      { key: 'treatment', weight: 50, params: { version: '2' } },
    ],
    overrides: {},
    metrics: { guardrails: [] },
    status: 'running',
    version: 1,
    createdAt: T,
    updatedAt: T,
    ...extra,
  };
}

export function snapshot(version: number, routes: Route[], experiments: Experiment[] = []): ConfigSnapshot {
  return { version, routes: Object.fromEntries(routes.map((r) => [r.key, r])), experiments, metrics: {}, holdout: null, events: {} };
}
