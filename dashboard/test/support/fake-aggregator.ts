import type { FastifyInstance } from 'fastify';
import { createError } from '@bunryu/core';
import { createHttpServer } from '@bunryu/platform';

/**
 * Serves whatever results a test put in `results` (SPEC §4 aggregator shape); given `tokens`, only
 * to a request bearing one of them, as the aggregator does.
 */
export function fakeAggregator(tokens?: readonly string[]): { app: FastifyInstance; results: Map<string, unknown>; timeseries: Map<string, unknown>; received: { url: string; headers: Record<string, unknown> }[] } {
  const received: { url: string; headers: Record<string, unknown> }[] = [];
  const app = createHttpServer({ service: 'fake-aggregator', logLevel: 'silent' });
  const results = new Map<string, unknown>();
  const timeseries = new Map<string, unknown>();
  if (tokens) {
    app.addHook('onRequest', async (r) => {
      if (!r.url.startsWith('/v1/results/')) return;
      if (!tokens.some((t) => r.headers.authorization === `Bearer ${t}`)) throw createError('BUNRYU_UNAUTHORIZED', 'Unknown bearer token');
    });
  }
  app.get<{ Params: { key: string } }>('/v1/results/:key', async (r) => {
    const res = results.get(r.params.key);
    if (!res) throw createError('BUNRYU_NOT_FOUND', `no results for ${r.params.key}`);
    return res;
  });
  app.get<{ Params: { key: string }; Querystring: { metric?: string } }>('/v1/results/:key/timeseries', async (r) => {
    const res = timeseries.get(`${r.params.key}:${r.query.metric}`);
    if (!res) throw createError('BUNRYU_NOT_FOUND', `no timeseries for ${r.params.key}`);
    return res;
  });
  app.all('/v1/echo/*', async (r) => {
    received.push({ url: r.url, headers: r.headers });
    return { ok: true };
  });
  return { app, results, timeseries, received };
}
