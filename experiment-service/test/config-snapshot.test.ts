import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigSnapshot, assign } from '@bunryu/core';
import { integrationServer } from '@bunryu/platform/testing';
import { bearer, definition, seed, startApp, storeFixture, type StoreFixture, type TestApp } from './support/service.ts';
import { connectSse, type SseConnection } from './support/sse-client.ts';

const redis = await integrationServer('REDIS_URL', 'redis://127.0.0.1:6379');

describe('GET /v1/config', () => {
  let fixture: StoreFixture;
  let t: TestApp;
  beforeEach(async () => {
    fixture = await storeFixture('file', undefined);
    t = await startApp(fixture);
    await seed(t.app);
  });
  afterEach(async () => {
    await t.close();
    await fixture.cleanup();
  });
  const get = (headers: Record<string, string> = {}) => t.app.inject({ method: 'GET', url: '/v1/config', headers: { ...bearer('viewer'), ...headers } });
  const post = (url: string, payload?: object) => t.app.inject({ method: 'POST', url, headers: bearer('admin'), ...(payload ? { payload } : {}) });

  it('is a valid ConfigSnapshot of what affects traffic, that the core assigns with', async () => {
    expect((await post('/v1/experiments', definition({ key: 'running-one', layer: 'a' }))).statusCode).toBe(201);
    expect((await post('/v1/experiments/running-one/start')).statusCode).toBe(200);
    expect((await post('/v1/experiments', definition({ key: 'draft-one', layer: 'b' }))).statusCode).toBe(201);
    expect((await t.app.inject({ method: 'PUT', url: '/v1/holdout', headers: bearer('admin'), payload: { percent: 0, salt: 'x' } })).statusCode).toBe(200);

    const r = await get();
    expect(r.statusCode).toBe(200);
    const snapshot = ConfigSnapshot.parse(r.json());
    expect(snapshot.version).toBe(6);
    expect(r.headers.etag).toBe('"6"');
    expect(Object.keys(snapshot.routes)).toEqual(['recommend']);
    expect(snapshot.experiments.map((e) => [e.key, e.status])).toEqual([['running-one', 'running']]);
    expect(Object.keys(snapshot.metrics).sort()).toEqual(['ctr', 'error_rate', 'latency_ms']);
    expect(snapshot.holdout).toEqual({ percent: 0, salt: 'x' });
    const a = assign(snapshot, 'recommend', 'qa-user-1', { country: 'JP' });
    expect(a.assignments).toEqual([{ experiment: 'running-one', variant: 'treatment', forced: true }]);
    expect(a.params).toEqual({ version: '2' });
  });

  it('answers 304 to If-None-Match with the current version, and 200 once it changed', async () => {
    const first = await get();
    expect((await get({ 'if-none-match': first.headers.etag as string })).statusCode).toBe(304);
    await post('/v1/experiments', definition());
    await post('/v1/experiments/ranker-v2/start');
    const after = await get({ 'if-none-match': first.headers.etag as string });
    expect(after.statusCode).toBe(200);
    expect(after.json().version).toBeGreaterThan(first.json().version);
  });

  it('counts versions on across restarts', async () => {
    const before = (await get()).json().version as number;
    await t.close();
    t = await startApp(fixture);
    expect((await get()).json().version).toBe(before);
    await post('/v1/experiments', definition());
    expect((await get()).json().version).toBe(before + 1);
    expect((await t.app.inject({ method: 'GET', url: '/v1/experiments/ranker-v2', headers: bearer('viewer') })).json().status).toBe('draft');
  });
});

describe('GET /v1/config/stream', () => {
  let fixture: StoreFixture;
  let t: TestApp;
  let base: string;
  const open: SseConnection[] = [];
  beforeEach(async () => {
    fixture = await storeFixture('file', undefined);
    t = await startApp(fixture, { SSE_HEARTBEAT_SECONDS: '0.1' });
    await seed(t.app);
    base = await t.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterEach(async () => {
    for (const c of open.splice(0)) c.close();
    await t.close();
    await fixture.cleanup();
  });
  const connect = async (headers = bearer('viewer')) => {
    const c = await connectSse(`${base}/v1/config/stream`, headers);
    open.push(c);
    return c;
  };
  const streamClients = async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    return Number(/^bunryu_config_stream_clients\{[^}]*\} (\d+)/m.exec(text)?.[1]);
  };

  it('sends the current snapshot at once, then each new one, with heartbeats between', async () => {
    const c = await connect();
    expect(c.status).toBe(200);
    expect(c.headers['content-type']).toMatch(/^text\/event-stream/);
    const first = await c.next();
    expect(first.event).toBe('snapshot');
    const snap = ConfigSnapshot.parse(JSON.parse(first.data));
    expect(first.id).toBe(String(snap.version));

    const created = await fetch(`${base}/v1/experiments`, { method: 'POST', headers: { ...bearer('editor'), 'content-type': 'application/json' }, body: JSON.stringify(definition()) });
    expect(created.status).toBe(201);
    const second = await c.next();
    expect(JSON.parse(second.data).version).toBe(snap.version + 1);
    await fetch(`${base}/v1/experiments/ranker-v2/start`, { method: 'POST', headers: bearer('editor') });
    const third = JSON.parse((await c.next()).data);
    expect(third.experiments.map((e: { key: string; status: string }) => [e.key, e.status])).toEqual([['ranker-v2', 'running']]);
    await expect.poll(() => c.comments, { timeout: 2000 }).toBeGreaterThan(0);
  });

  it('needs a token, and forgets a client that disconnects', async () => {
    const anonymous = await connect({} as ReturnType<typeof bearer>);
    expect(anonymous.status).toBe(401);
    const c = await connect();
    await c.next();
    expect(await streamClients()).toBe(1);
    c.close();
    await expect.poll(streamClients).toBe(0);
  });

  it('ends open streams when the service shuts down', async () => {
    const c = await connect();
    await c.next();
    await t.app.close(); // would hang on the open stream otherwise
    await expect(c.next(300)).rejects.toThrow();
  });
});

describe.skipIf(!redis.url)('config stream across replicas (Redis)', () => {
  let fixture: StoreFixture;
  let a: TestApp;
  let b: TestApp;
  let c: SseConnection | undefined;
  beforeEach(async () => {
    fixture = await storeFixture('redis', redis.url);
    a = await startApp(fixture);
    b = await startApp(fixture);
  });
  afterEach(async () => {
    c?.close();
    await Promise.all([a.close(), b.close()]);
    await fixture.cleanup();
  });

  it("pushes a change made on one instance to the stream subscribers of another", async () => {
    const baseB = await b.app.listen({ host: '127.0.0.1', port: 0 });
    c = await connectSse(`${baseB}/v1/config/stream`, bearer('viewer'));
    const first = JSON.parse((await c.next()).data);
    await seed(a.app);
    const route = JSON.parse((await c.next()).data);
    expect(route.version).toBeGreaterThan(first.version);
    expect(Object.keys(route.routes)).toEqual(['recommend']);
    // b's own GET agrees with what its stream said.
    const latest = await c.next(); // the metric defined by seed()
    const got = await b.app.inject({ method: 'GET', url: '/v1/config', headers: bearer('viewer') });
    expect(got.json().version).toBe(JSON.parse(latest.data).version);
  });
});
