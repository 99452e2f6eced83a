import { describe, expect, it } from 'vitest';
import { createError } from '@bunryu/core';
import { createHttpServer } from '../src/index.ts';

describe('createHttpServer', () => {
  const build = (ready = true) => {
    const app = createHttpServer({
      service: 'test',
      logLevel: 'silent',
      readiness: [{ name: 'store', check: () => { if (!ready) throw new Error('store down'); } }],
    });
    app.post('/echo', async (req) => req.body);
    app.get('/boom', async () => { throw new Error('secret detail'); });
    app.get('/missing', async () => { throw createError('BUNRYU_NOT_FOUND', 'no experiment "x"'); });
    return app;
  };

  it('answers healthz, readyz and metrics', async () => {
    const app = build();
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok', service: 'test' });
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    await app.inject('/healthz');
    const metrics = await app.inject('/metrics');
    expect(metrics.headers['content-type']).toMatch(/text\/plain/);
    expect(metrics.body).toMatch(/bunryu_http_requests_total\{method="GET",route="\/healthz",status="200",service="test"\} [1-9]/);
  });

  it('readyz is 503 naming the failing dependency', async () => {
    const r = await build(false).inject('/readyz');
    expect(r.statusCode).toBe(503);
    expect(r.json().checks).toEqual({ store: 'store down' });
  });

  it('answers 413 over 1 MiB, 400 on bad JSON, 404 in the error shape, and hides 5xx messages', async () => {
    const app = build();
    const big = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ s: 'x'.repeat(1024 * 1024) }) });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('BUNRYU_PAYLOAD_TOO_LARGE');
    const bad = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{"a":' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('BUNRYU_INVALID_JSON');
    expect((await app.inject('/nope')).json()).toEqual({ error: { code: 'BUNRYU_NOT_FOUND', message: 'no route GET /nope' } });
    expect((await app.inject('/missing')).json()).toEqual({ error: { code: 'BUNRYU_NOT_FOUND', message: 'no experiment "x"' } });
    const boom = await app.inject('/boom');
    expect(boom.statusCode).toBe(500);
    expect(boom.body).not.toContain('secret detail');
  });

  it('echoes a given x-request-id and generates one otherwise', async () => {
    const app = build();
    app.get('/id', async (req) => ({ id: req.id }));
    expect((await app.inject({ url: '/id', headers: { 'x-request-id': 'abc' } })).json().id).toBe('abc');
    expect((await app.inject('/id')).json().id).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('request metrics', () => {
  it('exposes a counter and a cumulative histogram in Prometheus text', async () => {
    const app = createHttpServer({ service: 'm', logLevel: 'silent' });
    app.get('/x', async () => ({ ok: true }));
    for (let i = 0; i < 3; i++) await app.inject('/x');
    const body = (await app.inject('/metrics')).body;
    expect(body).toMatch(/^bunryu_http_requests_total\{method="GET",route="\/x",status="200",service="m"\} 3$/m);
    expect(body).toMatch(/^bunryu_http_request_duration_seconds_bucket\{method="GET",route="\/x",le="\+Inf",service="m"\} 3$/m);
    expect(body).toMatch(/^bunryu_http_request_duration_seconds_count\{method="GET",route="\/x",service="m"\} 3$/m);
    const buckets = [...body.matchAll(/^bunryu_http_request_duration_seconds_bucket\{method="GET",route="\/x",le="([^"]+)",service="m"\} (\d+)$/gm)].map((m) => Number(m[2]));
    expect(buckets.length).toBe(13);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b)); // cumulative
  });
});
