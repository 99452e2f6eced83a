// Which routes serve a model: the Models page offers a release only on those.

/**
 * Routes whose `path` calls the model (`/v1/models/<name>/…`) or whose default params name it
 * (`model: <name>`): the routes a new version of that model can be released on.
 * @param {{key: string, path?: string, defaultParams?: Record<string, unknown>}[]} routes
 * @param {string} model
 */
export function routesServing(routes, model) {
  const re = new RegExp(`/models/${model.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(/|$)`);
  return routes.filter((r) => re.test(r.path ?? '') || r.defaultParams?.model === model);
}

/**
 * The version a route serves by default, when its default params name one.
 * @param {{defaultParams?: Record<string, unknown>}} route
 */
export function defaultVersion(route) {
  const v = route.defaultParams?.version;
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}
