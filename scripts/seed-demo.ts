/**
 * Seeds, once, the demo of `npm start` (SPEC §2): the route `recommend` served by the demo
 * models, an approved event catalogue (SPEC §16) for the events the demo traffic sends, a metric
 * catalogue, and a running experiment v1 (control) against v2 (treatment).
 * Everything goes through the experiment-service API, as a PM would.
 */
export interface SeedOptions {
  experimentServiceUrl: string;
  modelServerUrl: string;
  token: string;
  log?: (line: string) => void;
}

export const DEMO_ROUTE = 'recommend';
export const DEMO_EXPERIMENT = 'recommend-v2';
/** The ranked route (the model-server's ranking endpoint) and its interleaving experiment of v1 and v2 (SPEC §13). */
export const DEMO_RANK_ROUTE = 'rank';
export const DEMO_INTERLEAVING = 'rank-interleaved';

/** The events `npm run demo` sends (impression, click, dwell), and a purchase a shop would add. */
export const DEMO_EVENTS: Record<string, { description: string; owner: string; attributes: Record<string, { type: 'string' | 'number' | 'boolean'; required?: boolean; enum?: (string | number)[] }>; value?: { unit: string } }> = {
  impression: {
    description: 'The recommended item was shown to the user',
    owner: 'recommendations',
    attributes: { position: { type: 'number' }, surface: { type: 'string', enum: ['home', 'search', 'item'] } },
  },
  click: {
    description: 'The user clicked the recommended item',
    owner: 'recommendations',
    attributes: { position: { type: 'number' }, surface: { type: 'string', enum: ['home', 'search', 'item'] } },
  },
  dwell: {
    description: 'Time the user spent on the clicked item',
    owner: 'recommendations',
    attributes: {},
    value: { unit: 'seconds' },
  },
  purchase: {
    description: 'The user bought an item',
    owner: 'commerce',
    attributes: { item: { type: 'string', required: true }, quantity: { type: 'number' } },
    value: { unit: 'JPY' },
  },
};

export async function seedDemo(o: SeedOptions): Promise<void> {
  const log = o.log ?? (() => {});
  const call = async (method: string, path: string, body?: unknown, ok: number[] = [200, 201]) => {
    const res = await fetch(`${o.experimentServiceUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${o.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!ok.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.status === 404 ? null : ((await res.json()) as unknown);
  };

  // The catalogue is seeded on its own, so a data directory from before it existed gets it too.
  const declared = (await call('GET', '/v1/events')) as unknown[];
  if (declared.length === 0) {
    log('seeding the demo event catalogue');
    for (const [type, declaration] of Object.entries(DEMO_EVENTS)) {
      await call('PUT', `/v1/events/${type}`, declaration);
      await call('POST', `/v1/events/${type}/approve`, undefined);
    }
  }

  const routes = (await call('GET', '/v1/routes')) as unknown;
  const list = Array.isArray(routes) ? routes : ((routes as { routes?: unknown[] })?.routes ?? []);
  /** The demo route, its metrics and the A/B experiment v1 against v2. */
  const seedAbTest = async () => {
    log(`seeding the demo route "${DEMO_ROUTE}" and experiment "${DEMO_EXPERIMENT}"`);
    await call('PUT', `/v1/routes/${DEMO_ROUTE}`, {
      upstream: o.modelServerUrl,
      path: `/v1/models/${DEMO_ROUTE}`,
      defaultParams: { model: DEMO_ROUTE, version: 'v1' },
      timeoutMs: 300,
      fallback: { status: 200, body: { model: DEMO_ROUTE, version: 'fallback', predictions: [] } },
    });
    await call('PUT', '/v1/metrics/ctr', { type: 'proportion', event: 'click', description: 'Share of users who clicked at least once' });
    await call('PUT', '/v1/metrics/dwell', { type: 'mean', event: 'dwell', description: 'Seconds spent on clicked items per user' });
    await call('PUT', '/v1/metrics/clicks_per_impression', {
      type: 'ratio',
      numerator: { event: 'click' },
      denominator: { event: 'impression' },
      description: 'Clicks over impressions',
    });
    await call('POST', '/v1/experiments', {
      key: DEMO_EXPERIMENT,
      name: 'Recommender v2 against v1',
      hypothesis: 'v2, trained on every feature, lifts CTR',
      route: DEMO_ROUTE,
      layer: 'ranking',
      trafficPercent: 100,
      variants: [
        { key: 'control', weight: 50, params: { version: 'v1' } },
        { key: 'treatment', weight: 50, params: { version: 'v2' } },
      ],
      overrides: { 'qa-user-1': 'treatment' },
      metrics: { primary: 'ctr', guardrails: ['error_rate', 'latency_ms'] },
    });
    await call('POST', `/v1/experiments/${DEMO_EXPERIMENT}/start`, undefined);
  };
  const has = (key: string) => list.some((r) => (r as { key?: string }).key === key);
  if (!has(DEMO_ROUTE)) await seedAbTest();
  // Seeded on its own, so a data directory from before interleaving gets it too.
  if (!has(DEMO_RANK_ROUTE)) {
    log(`seeding the ranked route "${DEMO_RANK_ROUTE}" and its interleaving experiment "${DEMO_INTERLEAVING}"`);
    await call('PUT', `/v1/routes/${DEMO_RANK_ROUTE}`, {
      upstream: o.modelServerUrl,
      path: `/v1/models/${DEMO_ROUTE}`,
      defaultParams: { model: DEMO_ROUTE, version: 'v1' },
      timeoutMs: 300,
      fallback: { status: 200, body: { items: [], fallback: true } },
    });
    await call('POST', '/v1/experiments', {
      key: DEMO_INTERLEAVING,
      name: 'Ranker v2 against v1, interleaved',
      hypothesis: 'Users click v2\'s items more often than v1\'s when both are in one list',
      route: DEMO_RANK_ROUTE,
      design: 'interleave',
      variants: [
        { key: 'control', weight: 50, params: { version: 'v1' } },
        { key: 'treatment', weight: 50, params: { version: 'v2' } },
      ],
      metrics: { primary: 'ctr', guardrails: ['error_rate', 'latency_ms'] },
    });
    await call('POST', `/v1/experiments/${DEMO_INTERLEAVING}/start`, undefined);
  }
}
