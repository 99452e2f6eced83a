import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventTap } from './support/event-tap.ts';
import type { TestGateway } from './support/gateway.ts';
import { startReadyGateway, type ReadyGateway } from './support/ready-gateway.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';
import { closedPort, startUpstream, type TestUpstream } from './support/upstream.ts';

// Both of the gateway's HTTP servers serve routes: its own (the default) and node:http.
describe.each(['own', 'node'] as const)('route timeoutMs and fallback (%s HTTP server)', (httpServer) => {
  let healthy: TestUpstream;
  let slow: TestUpstream;
  let failing: TestUpstream;
  let backup: TestUpstream;
  let modelFallback: TestUpstream;
  let ready: ReadyGateway;
  let gw: TestGateway;
  let tap: EventTap;
  const fixed = { status: 200, body: { predictions: [], fallback: true }, headers: { 'x-served-by': 'fallback' } };

  beforeAll(async () => {
    healthy = await startUpstream('healthy');
    slow = await startUpstream('slow', (_req, res) => {
      // Headers go out at once, the body never completes: the deadline must cover the body too.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"partial":');
    });
    failing = await startUpstream('failing', (_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":"model down"}');
    });
    backup = await startUpstream('backup');
    modelFallback = await startUpstream('model-fallback', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-model-fallback': 'true' });
      res.end('{"predictions":[0.1]}');
    });
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const routes = [
      route('dead-to-backup', dead, { fallback: { upstream: backup.url }, path: '/m' }),
      route('slow-to-fixed', slow.url, { timeoutMs: 150, fallback: fixed }),
      route('slow-to-backup', slow.url, { timeoutMs: 150, fallback: { upstream: backup.url } }),
      route('failing-to-fixed', failing.url, { fallback: fixed }),
      route('dead-no-fallback', dead),
      route('slow-no-fallback', slow.url, { timeoutMs: 150 }),
      route('failing-no-fallback', failing.url),
      route('both-dead', dead, { fallback: { upstream: dead } }),
      route('healthy', healthy.url),
      route('model-fallback', modelFallback.url),
    ];
    ready = await startReadyGateway(snapshot(1, routes, routes.map((r) => experiment(`exp-${r.key}`, r.key))), { GATEWAY_HTTP_SERVER: httpServer });
    ({ gw, tap } = ready);
  });

  afterAll(async () => {
    await ready?.close();
    for (const u of [healthy, slow, failing, backup, modelFallback]) await u?.close();
  });

  async function call(routeName: string) {
    const res = await fetch(`${gw.url}/v1/routes/${routeName}/predict?x=1`, {
      method: 'POST',
      headers: { 'x-unit-id': `unit-${routeName}`, 'content-type': 'application/json' },
      body: '{"instances":[]}',
    });
    const requestId = res.headers.get('x-request-id');
    const exposure = (await tap.drain()).find((e) => e.requestId === requestId);
    return { res, body: await res.text(), exposure };
  }

  it('answers from the fallback upstream when the upstream refuses connections, and records a 502 exposure', async () => {
    const { res, body, exposure } = await call('dead-to-backup');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ab-fallback')).toBe('true');
    expect(res.headers.get('x-upstream-name')).toBe('backup');
    expect(res.headers.get('x-ab-assignments')).toMatch(/^exp-dead-to-backup=/);
    // The same request, body and A/B headers, sent to the fallback upstream.
    const seen = backup.seen.at(-1)!;
    expect(seen.url).toBe('/m/predict?x=1');
    expect(seen.body).toBe('{"instances":[]}');
    expect(seen.headers['x-ab-unit']).toBe('unit-dead-to-backup');
    expect(JSON.parse(body).url).toBe('/m/predict?x=1');
    expect(exposure).toMatchObject({ type: 'exposure', status: 502, fallback: 'route' });
  });

  it('records on the exposure an answer from the model-server\'s fallback version, and nothing when none was used', async () => {
    const plain = await call('healthy');
    expect(plain.res.status).toBe(200);
    expect(plain.exposure).toBeDefined();
    expect(plain.exposure!.fallback).toBeUndefined();
    const model = await call('model-fallback');
    expect(model.res.headers.get('x-model-fallback')).toBe('true');
    expect(model.exposure).toMatchObject({ status: 200, fallback: 'model' });
  });

  it('answers the fixed fallback when the upstream exceeds timeoutMs while sending its body', async () => {
    const started = Date.now();
    const { res, body, exposure } = await call('slow-to-fixed');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ab-fallback')).toBe('true');
    expect(res.headers.get('x-served-by')).toBe('fallback');
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(JSON.parse(body)).toEqual(fixed.body);
    expect(exposure).toMatchObject({ status: 504 });
    // Timers run on the event loop's millisecond clock, which can stand up to 1 ms behind performance.now().
    expect(exposure!.latencyMs).toBeGreaterThanOrEqual(149);
  });

  it('answers from the fallback upstream on a timeout', async () => {
    const { res, exposure } = await call('slow-to-backup');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-upstream-name')).toBe('backup');
    expect(res.headers.get('x-ab-fallback')).toBe('true');
    expect(exposure).toMatchObject({ status: 504 });
  });

  it('treats a 5xx answer as a failure when the route has a fallback, and records the real status', async () => {
    const { res, body, exposure } = await call('failing-to-fixed');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ab-fallback')).toBe('true');
    expect(JSON.parse(body)).toEqual(fixed.body);
    expect(exposure).toMatchObject({ status: 503 });
  });

  it('without a fallback answers 502, 504, or passes the upstream 5xx through', async () => {
    const dead = await call('dead-no-fallback');
    expect(dead.res.status).toBe(502);
    expect(JSON.parse(dead.body).error.code).toBe('BUNRYU_UPSTREAM_FAILED');
    expect(JSON.parse(dead.body).error.message).not.toMatch(/127\.0\.0\.1/);
    expect(dead.res.headers.get('x-ab-fallback')).toBeNull();
    expect(dead.exposure).toMatchObject({ status: 502 });

    const timeout = await call('slow-no-fallback');
    expect(timeout.res.status).toBe(504);
    expect(JSON.parse(timeout.body).error.code).toBe('BUNRYU_UPSTREAM_TIMEOUT');
    expect(timeout.exposure).toMatchObject({ status: 504 });

    const failing = await call('failing-no-fallback');
    expect(failing.res.status).toBe(503);
    expect(JSON.parse(failing.body)).toEqual({ error: 'model down' });
    expect(failing.exposure).toMatchObject({ status: 503 });
  });

  it('answers 502 when the fallback upstream fails too', async () => {
    const { res, body } = await call('both-dead');
    expect(res.status).toBe(502);
    expect(res.headers.get('x-ab-fallback')).toBe('true');
    expect(JSON.parse(body).error.code).toBe('BUNRYU_UPSTREAM_FAILED');
  });

  it('counts fallbacks in /metrics', async () => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(text).toMatch(/bunryu_gateway_fallbacks_total\{route="slow-to-fixed",reason="timeout"[^}]*\} 1/);
    expect(text).toMatch(/bunryu_gateway_fallbacks_total\{route="dead-to-backup",reason="error"[^}]*\} 1/);
    expect(text).toMatch(/bunryu_gateway_fallbacks_total\{route="failing-to-fixed",reason="status"[^}]*\} 1/);
  });
});
