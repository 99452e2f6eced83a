import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assign, formatAssignmentsHeader, type ConfigSnapshot } from '@bunryu/core';
import { startFakeExperimentService, type FakeExperimentService } from './support/fake-experiment-service.ts';
import { startGateway, until, type TestGateway } from './support/gateway.ts';
import type { EventTap } from './support/event-tap.ts';
import { startReadyGateway, type ReadyGateway } from './support/ready-gateway.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';
import { rawRequest, startUpstream, type TestUpstream } from './support/upstream.ts';

// Both of the gateway's HTTP servers serve routes: its own (the default) and node:http.
describe.each(['own', 'node'] as const)('forwarding /v1/routes/:route/* (%s HTTP server)', (httpServer) => {
  let main: TestUpstream;
  let variantUpstream: TestUpstream;
  let ready: ReadyGateway;
  let gw: TestGateway;
  let config: ConfigSnapshot;
  let tap: EventTap;

  beforeAll(async () => {
    main = await startUpstream('main');
    variantUpstream = await startUpstream('variant');
    config = snapshot(
      3,
      [
        route('recommend', main.url, { path: '/v1/models/recommend', defaultParams: { model: 'recommend', version: '0' } }),
        route('based', `${main.url}/base/`, { path: '/', defaultParams: { label: 'おすすめ 💡', note: 'déjà' } }),
        route('canary', main.url, { path: '/predict' }),
      ],
      [
        experiment('ranker', 'recommend', { overrides: { 'qa-user': 'treatment' } }),
        experiment('geo', 'recommend', {
          targeting: [{ attribute: 'country', op: 'in', value: ['JP'] }],
          variants: [
            { key: 'a', weight: 50, params: { geo: 'a' } },
            { key: 'b', weight: 50, params: { geo: 'b' } },
          ],
        }),
        experiment('adult', 'recommend', {
          targeting: [{ attribute: 'age', op: 'gte', value: 18 }],
          variants: [
            { key: 'off', weight: 50, params: { adult: false } },
            { key: 'on', weight: 50, params: { adult: true } },
          ],
        }),
        experiment('canary-model', 'canary', {
          variants: [
            { key: 'stable', weight: 50, params: {} },
            { key: 'next', weight: 50, params: {}, upstream: variantUpstream.url },
          ],
          overrides: { 'to-next': 'next', 'to-stable': 'stable' },
        }),
      ],
    );
    // The embedded event log, as in production without KAFKA_BROKERS.
    ready = await startReadyGateway(config, { GATEWAY_HTTP_SERVER: httpServer });
    ({ gw, tap } = ready);
  });

  afterAll(async () => {
    await ready?.close();
    await main?.close();
    await variantUpstream?.close();
  });

  const expected = (routeName: string, unit: string, attributes: Record<string, unknown> = {}) => assign(config, routeName, unit, attributes);

  it('forwards method, joined path, query, body and headers, and adds the A/B headers', async () => {
    main.seen.length = 0;
    const body = JSON.stringify({ instances: [{ f: 1 }] });
    const res = await fetch(`${gw.url}/v1/routes/recommend/predict?q=1&x=%20y`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-unit-id': 'u-1', 'x-custom': 'kept' },
      body,
    });
    expect(res.status).toBe(200);
    const seen = main.seen.at(-1)!;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/v1/models/recommend/predict?q=1&x=%20y');
    expect(seen.body).toBe(body);
    expect(seen.headers['content-type']).toBe('application/json');
    expect(seen.headers['x-custom']).toBe('kept');
    expect(seen.headers.host).toBe(`127.0.0.1:${main.port}`);

    const want = expected('recommend', 'u-1');
    expect(want.assignments.length).toBeGreaterThan(0);
    expect(seen.headers['x-ab-unit']).toBe('u-1');
    expect(seen.headers['x-ab-assignments']).toBe(formatAssignmentsHeader(want.assignments));
    expect(JSON.parse(seen.headers['x-ab-params'] as string)).toEqual(want.params);
    expect(JSON.parse(seen.headers['x-ab-params'] as string).model).toBe('recommend');

    expect(res.headers.get('x-ab-assignments')).toBe(formatAssignmentsHeader(want.assignments));
    expect(res.headers.get('x-request-id')).toBe(seen.headers['x-request-id']);
    expect(res.headers.get('x-upstream')).toBe('yes');
    expect(await res.json()).toEqual({ upstream: 'echo', method: 'POST', url: '/v1/models/recommend/predict?q=1&x=%20y', body });
  });

  it('sends params beyond ASCII as JSON escapes, since header values are Latin-1', async () => {
    main.seen.length = 0;
    expect((await fetch(`${gw.url}/v1/routes/based/x`, { headers: { 'x-unit-id': 'u-1' } })).status).toBe(200);
    const header = main.seen.at(-1)!.headers['x-ab-params'] as string;
    expect(header).toMatch(/^[\x20-\x7e]+$/);
    expect(JSON.parse(header)).toEqual({ label: 'おすすめ 💡', note: 'déjà' });
  });

  it('joins the route path with nothing, a query, or an upstream base path', async () => {
    await fetch(`${gw.url}/v1/routes/recommend`, { headers: { 'x-unit-id': 'u-2' } });
    expect(main.seen.at(-1)!.url).toBe('/v1/models/recommend');
    await fetch(`${gw.url}/v1/routes/recommend?a=b`, { headers: { 'x-unit-id': 'u-2' } });
    expect(main.seen.at(-1)!.url).toBe('/v1/models/recommend?a=b');
    await fetch(`${gw.url}/v1/routes/based/x/y?z=1`, { headers: { 'x-unit-id': 'u-2' } });
    expect(main.seen.at(-1)!.url).toBe('/base/x/y?z=1');
    await fetch(`${gw.url}/v1/routes/based`, { headers: { 'x-unit-id': 'u-2' } });
    expect(main.seen.at(-1)!.url).toBe('/base');
  });

  it('keeps hop-by-hop headers, the API key and spoofed A/B headers away from the upstream', async () => {
    await rawRequest(`${gw.url}/v1/routes/recommend/predict`, {
      headers: {
        'x-unit-id': 'u-3',
        'x-api-key': 'secret',
        'proxy-authorization': 'Basic abc',
        'x-ab-assignments': 'ranker=forged',
        'x-ab-params': '{"version":"forged"}',
        connection: 'keep-alive, x-drop-me',
        'x-drop-me': '1',
      },
    });
    const seen = main.seen.at(-1)!;
    expect(seen.headers['x-api-key']).toBeUndefined();
    expect(seen.headers['proxy-authorization']).toBeUndefined();
    expect(seen.headers['x-drop-me']).toBeUndefined();
    expect(seen.headers['x-ab-assignments']).toBe(formatAssignmentsHeader(expected('recommend', 'u-3').assignments));
    expect(seen.headers['x-ab-params']).not.toContain('forged');
  });

  it('takes a body sent with Expect: 100-continue and forwards it whole, without the Expect', async () => {
    const res = await rawRequest(`${gw.url}/v1/routes/recommend/predict`, {
      method: 'POST',
      headers: { 'x-unit-id': 'u-expect', expect: '100-continue', 'content-type': 'application/json' },
      body: '{"instances":[1]}',
    });
    expect(res.status).toBe(200);
    const seen = main.seen.at(-1)!;
    expect(seen.body).toBe('{"instances":[1]}');
    expect(seen.headers.expect).toBeUndefined();
  });

  it('does not take a unit id from a cookie that decodes to what no header may hold', async () => {
    const res = await fetch(`${gw.url}/v1/routes/recommend/predict`, { headers: { cookie: 'ab_uid=evil%0D%0Ax-injected%3A%201' } });
    expect(res.status).toBe(200);
    const issued = /^ab_uid=([0-9a-f-]{36});/.exec(res.headers.getSetCookie()[0] ?? '');
    expect(issued).not.toBeNull();
    expect(main.seen.at(-1)!.headers['x-ab-unit']).toBe(issued![1]);
    expect(main.seen.at(-1)!.headers['x-injected']).toBeUndefined();
  });

  it('answers 400 naming x-unit-id when its bytes are not UTF-8', async () => {
    const before = main.seen.length;
    for (const bad of ['\xff\xfe', 'user-\xc3', '\xed\xa0\x80']) {
      const res = await fetch(`${gw.url}/v1/routes/recommend/predict`, { headers: { 'x-unit-id': bad } });
      expect(res.status).toBe(400);
      const error = ((await res.json()) as { error: { code: string; message: string; details: { fields: { path: string }[] } } }).error;
      expect(error.code).toBe('BUNRYU_VALIDATION');
      expect(error.details.fields[0]!.path).toBe('x-unit-id');
    }
    expect(main.seen.length).toBe(before);
  });

  it('reads a UTF-8 x-unit-id as the id a JSON body would name, and forwards its bytes unchanged', async () => {
    const id = 'ユーザー-ü';
    const wire = Buffer.from(id, 'utf8').toString('latin1');
    const res = await fetch(`${gw.url}/v1/routes/recommend/predict`, { headers: { 'x-unit-id': wire } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ab-assignments')).toBe(formatAssignmentsHeader(expected('recommend', id).assignments));
    expect(main.seen.at(-1)!.headers['x-ab-unit']).toBe(wire);
  });

  it('does not take a unit id from a cookie whose percent-encoded bytes are not UTF-8, and replaces it', async () => {
    const res = await fetch(`${gw.url}/v1/routes/recommend/predict`, { headers: { cookie: 'ab_uid=%FF%FE' } });
    expect(res.status).toBe(200);
    const issued = /^ab_uid=([0-9a-f-]{36});/.exec(res.headers.getSetCookie()[0] ?? '');
    expect(issued).not.toBeNull();
    expect(main.seen.at(-1)!.headers['x-ab-unit']).toBe(issued![1]);
  });

  it('issues an ab_uid cookie to a unit without id and keeps it on the next request', async () => {
    const first = await fetch(`${gw.url}/v1/routes/recommend/predict`);
    const cookie = first.headers.getSetCookie()[0]!;
    expect(cookie).toMatch(/^ab_uid=[0-9a-f-]{36}; Path=\/; Max-Age=31536000; HttpOnly; SameSite=Lax$/);
    const id = /^ab_uid=([^;]+)/.exec(cookie)![1]!;
    expect(main.seen.at(-1)!.headers['x-ab-unit']).toBe(id);
    const assignments = first.headers.get('x-ab-assignments');
    expect(assignments).toBe(formatAssignmentsHeader(expected('recommend', id).assignments));

    const second = await fetch(`${gw.url}/v1/routes/recommend/predict`, { headers: { cookie: `theme=dark; ab_uid=${id}; other=1` } });
    expect(second.headers.getSetCookie()).toEqual([]);
    expect(main.seen.at(-1)!.headers['x-ab-unit']).toBe(id);
    expect(second.headers.get('x-ab-assignments')).toBe(assignments);
  });

  it('assigns a unit the same variants on every request, and splits units across variants', async () => {
    const variants = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const headers = { 'x-unit-id': `sticky-${i}` };
      const a = (await fetch(`${gw.url}/v1/routes/recommend/p`, { headers })).headers.get('x-ab-assignments')!;
      const b = (await fetch(`${gw.url}/v1/routes/recommend/p`, { headers })).headers.get('x-ab-assignments')!;
      expect(b).toBe(a);
      variants.add(/ranker=([a-z]+)/.exec(a)![1]!);
    }
    expect(variants).toEqual(new Set(['control', 'treatment']));
  });

  it('targets on x-ab-attr-* headers, numbers included', async () => {
    const plain = await fetch(`${gw.url}/v1/routes/recommend/p`, { headers: { 'x-unit-id': 'u-4' } });
    expect(plain.headers.get('x-ab-assignments')).not.toMatch(/geo=|adult=/);
    const targeted = await fetch(`${gw.url}/v1/routes/recommend/p`, {
      headers: { 'x-unit-id': 'u-4', 'x-ab-attr-country': 'JP', 'x-ab-attr-age': '30' },
    });
    const header = targeted.headers.get('x-ab-assignments')!;
    expect(header).toBe(formatAssignmentsHeader(expected('recommend', 'u-4', { country: 'JP', age: 30 }).assignments));
    expect(header).toMatch(/geo=[ab]/);
    expect(header).toMatch(/adult=(on|off)/);
    const minor = await fetch(`${gw.url}/v1/routes/recommend/p`, { headers: { 'x-unit-id': 'u-4', 'x-ab-attr-age': '12' } });
    expect(minor.headers.get('x-ab-assignments')).not.toMatch(/adult=/);
  });

  it("sends a variant with its own upstream there instead of the route's", async () => {
    const next = await fetch(`${gw.url}/v1/routes/canary/x`, { headers: { 'x-unit-id': 'to-next' } });
    expect(next.headers.get('x-upstream-name')).toBe('variant');
    expect(variantUpstream.seen.at(-1)!.url).toBe('/predict/x');
    expect(variantUpstream.seen.at(-1)!.headers['x-ab-assignments']).toBe('canary-model=next');
    const stable = await fetch(`${gw.url}/v1/routes/canary/x`, { headers: { 'x-unit-id': 'to-stable' } });
    expect(stable.headers.get('x-upstream-name')).toBe('main');
  });

  it("passes the upstream's own 4xx through", async () => {
    main.behave((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"no such model"}');
    });
    try {
      const res = await fetch(`${gw.url}/v1/routes/recommend/p`, { headers: { 'x-unit-id': 'u-5' } });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: 'no such model' });
      expect(res.headers.get('x-ab-fallback')).toBeNull();
    } finally {
      main.behave((req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
        res.end(JSON.stringify({ upstream: 'echo', method: req.method, url: req.url, body: req.body }));
      });
    }
  });

  it('answers the same through the fastify routes (app.inject) as through the server', async () => {
    const res = await gw.app.inject({ method: 'POST', url: '/v1/routes/recommend/predict?x=1', headers: { 'x-unit-id': 'u-inject', 'content-type': 'text/plain' }, payload: 'hello' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-ab-assignments']).toBe(formatAssignmentsHeader(expected('recommend', 'u-inject').assignments));
    const seen = main.seen.at(-1)!;
    expect(seen.url).toBe('/v1/models/recommend/predict?x=1');
    expect(seen.body).toBe('hello');
    expect(seen.headers['x-ab-unit']).toBe('u-inject');
    expect(res.headers['x-request-id']).toBe(seen.headers['x-request-id']);
    expect((await gw.app.inject({ url: '/v1/routes/nope/x' })).statusCode).toBe(404);
  });

  it('refuses a body over 1 MiB with 413, and forwards one just under it', async () => {
    const before = main.seen.length;
    const big = await fetch(`${gw.url}/v1/routes/recommend/upload`, { method: 'POST', headers: { 'x-unit-id': 'u-big' }, body: Buffer.alloc(1024 * 1024 + 1, 97) });
    expect(big.status).toBe(413);
    expect((await big.json()).error.code).toBe('BUNRYU_PAYLOAD_TOO_LARGE');
    const chunked = await rawRequest(`${gw.url}/v1/routes/recommend/upload`, { method: 'POST', headers: { 'x-unit-id': 'u-big', 'transfer-encoding': 'chunked' }, body: 'b'.repeat(1024 * 1024 + 10) });
    expect(chunked.status).toBe(413);
    expect(main.seen.length).toBe(before);
    const fits = await fetch(`${gw.url}/v1/routes/recommend/upload`, { method: 'POST', headers: { 'x-unit-id': 'u-big' }, body: Buffer.alloc(1024 * 1024, 97) });
    expect(fits.status).toBe(200);
    expect(main.seen.at(-1)!.body.length).toBe(1024 * 1024);
  });

  it('answers 404 for an unknown route', async () => {
    const res = await fetch(`${gw.url}/v1/routes/nope/predict`);
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe('BUNRYU_NOT_FOUND');
  });

  it('logs one exposure per request with its non-forced assignments, status and latency', async () => {
    await tap.drain();
    const res = await fetch(`${gw.url}/v1/routes/recommend/p`, { headers: { 'x-unit-id': 'qa-user', 'x-ab-attr-country': 'JP' } });
    const requestId = res.headers.get('x-request-id');
    const exposures = (await tap.drain()).filter((e) => e.requestId === requestId);
    expect(exposures).toHaveLength(1);
    const e = exposures[0]!;
    const want = expected('recommend', 'qa-user', { country: 'JP' });
    expect(want.assignments.find((a) => a.experiment === 'ranker')!.forced).toBe(true);
    expect(e).toMatchObject({ type: 'exposure', unitId: 'qa-user', route: 'recommend', status: 200, attributes: { country: 'JP' } });
    expect(e.assignments).toEqual(want.assignments.filter((a) => !a.forced).map(({ experiment, variant }) => ({ experiment, variant })));
    expect(e.latencyMs).toBeGreaterThan(0);
    expect(tap.records.find((r) => JSON.parse(r.value).requestId === requestId)!.key).toBe('qa-user');
  });

  it('keeps a client x-request-id (within the event schema bound)', async () => {
    const res = await fetch(`${gw.url}/v1/routes/recommend/p`, { headers: { 'x-unit-id': 'u-6', 'x-request-id': 'client-req-1' } });
    expect(res.headers.get('x-request-id')).toBe('client-req-1');
    expect(main.seen.at(-1)!.headers['x-request-id']).toBe('client-req-1');
    const long = await fetch(`${gw.url}/v1/routes/recommend/p`, { headers: { 'x-unit-id': 'u-6', 'x-request-id': 'r'.repeat(300) } });
    expect(long.headers.get('x-request-id')).toBe('r'.repeat(128));
  });

  it('counts requests by route, variant and status, and exports the publisher and config state', async () => {
    await fetch(`${gw.url}/v1/routes/recommend/p`, { headers: { 'x-unit-id': 'metrics-unit' } });
    const assignment = expected('recommend', 'metrics-unit').assignments.find((a) => a.experiment === 'ranker')!;
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
    expect(value(/bunryu_gateway_requests_total\{route="recommend",status="200"[^}]*\} (\d+)/)).toBeGreaterThan(40);
    expect(value(new RegExp(`bunryu_gateway_variant_requests_total\\{route="recommend",experiment="ranker",variant="${assignment.variant}",status="200"[^}]*\\} (\\d+)`))).toBeGreaterThan(0);
    expect(value(/bunryu_gateway_upstream_latency_seconds_count\{[^}]*route="recommend"[^}]*\} (\d+)/)).toBeGreaterThan(40);
    expect(text).toMatch(/bunryu_gateway_event_queue_depth\{[^}]*\} \d+/);
    expect(text).toMatch(/bunryu_gateway_events_spilled_total\{[^}]*\} 0/);
    expect(text).toMatch(/bunryu_gateway_config_version\{[^}]*\} 3/);
    expect(value(/bunryu_gateway_config_age_seconds\{[^}]*\} ([\d.]+)/)).toBeGreaterThanOrEqual(0);
  });

  it('rejects an x-unit-id longer than the event schema allows', async () => {
    const res = await fetch(`${gw.url}/v1/routes/recommend/p`, { headers: { 'x-unit-id': 'u'.repeat(257) } });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toMatch(/^x-unit-id/);
  });
});

describe('BUNRYU_CLIENT_KEYS', () => {
  let up: TestUpstream;
  let es: FakeExperimentService;
  let gw: TestGateway;

  beforeAll(async () => {
    up = await startUpstream();
    es = await startFakeExperimentService(snapshot(1, [route('recommend', up.url)]));
    gw = await startGateway({ experimentService: es.url, env: { BUNRYU_CLIENT_KEYS: 'k1, k2' } });
    await until(() => gw.deps.store.current !== null);
  });
  afterAll(async () => {
    await gw?.close();
    await es?.close();
    await up?.close();
  });

  it('requires one of the keys on every client endpoint', async () => {
    const calls: [string, RequestInit][] = [
      ['/v1/routes/recommend/x', {}],
      ['/v1/assign', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ unitId: 'u', route: 'recommend' }) }],
      ['/v1/events', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events: [] }) }],
    ];
    for (const [path, init] of calls) {
      const none = await fetch(gw.url + path, init);
      expect(none.status).toBe(401);
      expect((await none.json()).error.code).toBe('BUNRYU_UNAUTHORIZED');
      const wrong = await fetch(gw.url + path, { ...init, headers: { ...(init.headers as object), 'x-api-key': 'k3' } });
      expect(wrong.status).toBe(401);
      const right = await fetch(gw.url + path, { ...init, headers: { ...(init.headers as object), 'x-api-key': 'k2' } });
      expect(right.status).toBeLessThan(300);
    }
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });
});
