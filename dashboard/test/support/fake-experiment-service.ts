import type { FastifyInstance } from 'fastify';
import { BUILT_IN_METRICS, ExperimentDefinition, MetricDefinition, PromoteRequest, RampRequest, RouteInput, createError, parseOrThrow, type Experiment } from '@bunryu/core';
import { createHttpServer } from '@bunryu/platform';

/**
 * A small stand-in for the experiment-service (SPEC §4) for the dashboard's own tests: real HTTP,
 * the real schemas (so validation errors have the real shape), tokens with roles, and an
 * `/v1/echo/*` route that answers with what it received (to check the proxy).
 */
export interface Received {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export function fakeExperimentService(
  tokens: Record<string, { role: string; name: string }>,
  opts: { whoami?: boolean } = {},
): { app: FastifyInstance; received: Received[] } {
  const received: Received[] = [];
  const app = createHttpServer({ service: 'fake-experiment-service', logLevel: 'silent' });
  const rank = ['viewer', 'editor', 'releaser', 'admin'];
  const experiments = new Map<string, Experiment>();
  const routes = new Map<string, object>();
  const metrics = new Map<string, object>();
  const audit: { subject: string; action: string; actor: object; at: string; before: unknown; after: unknown }[] = [];
  const who = (auth: string | undefined, need = 'viewer') => {
    const t = /^Bearer (\S+)$/.exec(auth ?? '')?.[1];
    const p = t ? tokens[t] : undefined;
    if (!p) throw createError('BUNRYU_UNAUTHORIZED', 'Unknown bearer token');
    if (rank.indexOf(p.role) < rank.indexOf(need)) throw createError('BUNRYU_FORBIDDEN', `This needs the ${need} role; ${p.name} is ${p.role}`);
    return p;
  };
  const now = () => new Date().toISOString();
  const save = (actor: object, action: string, before: Experiment | null, after: Experiment) => {
    experiments.set(after.key, after);
    audit.push({ subject: `experiment:${after.key}`, action, actor, at: now(), before, after });
    return after;
  };
  const get = (key: string) => {
    const e = experiments.get(key);
    if (!e) throw createError('BUNRYU_NOT_FOUND', `no experiment ${key}`);
    return e;
  };

  if (opts.whoami !== false) app.get('/v1/me', async (r) => who(r.headers.authorization));
  app.all('/v1/echo/*', async (r, reply) => {
    received.push({ method: r.method, url: r.url, headers: r.headers, body: r.body ?? null });
    return reply.header('etag', '"7"').header('set-cookie', 'upstream=1').send({ ok: true });
  });

  app.get('/v1/experiments', async (r) => (who(r.headers.authorization), [...experiments.values()]));
  app.post('/v1/experiments', async (r, reply) => {
    const actor = who(r.headers.authorization, 'editor');
    const def = parseOrThrow(ExperimentDefinition, r.body);
    if (experiments.has(def.key)) throw createError('BUNRYU_ALREADY_EXISTS', `experiment ${def.key} exists`);
    const traffic = def.trafficPercent ?? 100;
    const e = { ...def, layer: def.layer ?? def.key, trafficPercent: traffic, allocation: def.allocation ?? { start: 0, end: Math.round(traffic * 100) }, status: 'draft', version: 1, createdAt: now(), updatedAt: now() } as Experiment;
    return reply.status(201).send(save(actor, 'create', null, e));
  });
  app.get<{ Params: { key: string } }>('/v1/experiments/:key', async (r) => (who(r.headers.authorization), get(r.params.key)));
  app.put<{ Params: { key: string } }>('/v1/experiments/:key', async (r) => {
    const actor = who(r.headers.authorization, 'editor');
    const before = get(r.params.key);
    if (String(before.version) !== r.headers['if-match']) throw createError('BUNRYU_VERSION_MISMATCH');
    const def = parseOrThrow(ExperimentDefinition, r.body);
    return save(actor, 'update', before, { ...before, ...def, layer: def.layer ?? before.layer, version: before.version + 1, updatedAt: now() } as Experiment);
  });
  const transition = (action: string, need: string, to: Experiment['status']) =>
    app.post<{ Params: { key: string } }>(`/v1/experiments/:key/${action}`, async (r) => {
      const actor = who(r.headers.authorization, need);
      const before = get(r.params.key);
      const extra: Partial<Experiment> = action === 'start' ? { startedAt: before.startedAt ?? now() } : {};
      if (action === 'promote') {
        const { variant } = parseOrThrow(PromoteRequest, r.body);
        Object.assign(extra, { releasedVariant: variant, releasedAt: now() });
      }
      return save(actor, action, before, { ...before, ...extra, status: to, version: before.version + 1, updatedAt: now() });
    });
  transition('start', 'editor', 'running');
  transition('pause', 'editor', 'paused');
  transition('archive', 'editor', 'archived');
  transition('rollback', 'releaser', 'rolled_back');
  transition('promote', 'releaser', 'released');
  app.post<{ Params: { key: string } }>('/v1/experiments/:key/ramp', async (r) => {
    const actor = who(r.headers.authorization, 'releaser');
    const before = get(r.params.key);
    const { weights } = parseOrThrow(RampRequest, r.body);
    const variants = before.variants.map((v) => ({ ...v, weight: weights[v.key] ?? v.weight }));
    return save(actor, 'ramp', before, { ...before, variants, version: before.version + 1, updatedAt: now() });
  });
  app.get<{ Params: { key: string } }>('/v1/experiments/:key/history', async (r) => {
    who(r.headers.authorization);
    return audit.filter((a) => a.subject === `experiment:${r.params.key}`);
  });

  app.get('/v1/routes', async (r) => (who(r.headers.authorization), [...routes.values()]));
  app.put<{ Params: { key: string } }>('/v1/routes/:key', async (r) => {
    who(r.headers.authorization, 'admin');
    const route = { ...parseOrThrow(RouteInput, r.body), key: r.params.key, updatedAt: now() };
    routes.set(r.params.key, route);
    return route;
  });
  app.get('/v1/metrics', async (r) => (who(r.headers.authorization), Object.fromEntries([...Object.values(BUILT_IN_METRICS), ...metrics.values()].map((m) => [(m as { key: string }).key, m]))));
  app.put<{ Params: { key: string } }>('/v1/metrics/:key', async (r) => {
    who(r.headers.authorization, 'admin');
    const m = { ...parseOrThrow(MetricDefinition, r.body), key: r.params.key };
    metrics.set(r.params.key, m);
    return m;
  });
  return { app, received };
}
