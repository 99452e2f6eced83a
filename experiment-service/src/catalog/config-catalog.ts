import { BUILT_IN_METRICS, Route, createError, parseOrThrow, type BuiltInMetric, type Holdout, type MetricDefinition, type RouteInput } from '@bunryu/core';
import type { Principal } from '@bunryu/platform/auth';
import type { ExperimentStore, UserMetric } from '../store/experiment-store.ts';

export type CatalogMetric = BuiltInMetric | (UserMetric & { builtIn: false });

/**
 * Routes, the metric catalogue and the holdout: the rest of what gateways and the aggregator
 * read from the config snapshot. Writes are last-writer-wins upserts, each audited.
 */
export class ConfigCatalog {
  constructor(
    private readonly store: ExperimentStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async routes(): Promise<Route[]> {
    const { routes } = await this.store.load();
    return routes.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  async route(key: string): Promise<Route> {
    const route = (await this.store.load()).routes.find((r) => r.key === key);
    if (!route) throw createError('BUNRYU_NOT_FOUND', `No route ${key}`);
    return route;
  }

  async putRoute(key: string, input: RouteInput, actor: Principal): Promise<{ route: Route; created: boolean }> {
    const before = (await this.store.load()).routes.find((r) => r.key === key) ?? null;
    const at = this.now().toISOString();
    const route = parseOrThrow(Route, { ...input, key, updatedAt: at });
    await this.store.commit({
      routes: [route],
      audit: [{ subject: `route:${key}`, action: before ? 'update' : 'create', actor, at, before, after: route }],
    });
    return { route, created: before === null };
  }

  /** The built-in metrics and every defined one, by key. */
  async metrics(): Promise<Record<string, CatalogMetric>> {
    return metricCatalogue((await this.store.load()).metrics);
  }

  async metric(key: string): Promise<CatalogMetric> {
    const metric = (await this.metrics())[key];
    if (!metric) throw createError('BUNRYU_NOT_FOUND', `No metric ${key}`);
    return metric;
  }

  async putMetric(key: string, definition: MetricDefinition, actor: Principal): Promise<{ metric: CatalogMetric; created: boolean }> {
    if (key in BUILT_IN_METRICS) throw createError('BUNRYU_ALREADY_EXISTS', `${key} is a built-in metric and cannot be redefined`, { key });
    const before = (await this.store.load()).metrics.find((m) => m.key === key) ?? null;
    const metric: UserMetric = { key, ...definition };
    await this.store.commit({
      metrics: [metric],
      audit: [{ subject: `metric:${key}`, action: before ? 'update' : 'create', actor, at: this.now().toISOString(), before, after: metric }],
    });
    return { metric: { ...metric, builtIn: false }, created: before === null };
  }

  async holdout(): Promise<Holdout | null> {
    return (await this.store.load()).holdout;
  }

  async setHoldout(holdout: Holdout, actor: Principal): Promise<Holdout> {
    const before = (await this.store.load()).holdout;
    await this.store.commit({
      holdout,
      audit: [{ subject: 'holdout', action: 'set', actor, at: this.now().toISOString(), before, after: holdout }],
    });
    return holdout;
  }
}

export function metricCatalogue(metrics: readonly UserMetric[]): Record<string, CatalogMetric> {
  const catalogue: Record<string, CatalogMetric> = { ...BUILT_IN_METRICS };
  for (const m of [...metrics].sort((a, b) => (a.key < b.key ? -1 : 1))) catalogue[m.key] = { ...m, builtIn: false };
  return catalogue;
}
