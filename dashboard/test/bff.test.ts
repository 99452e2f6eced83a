import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationServer } from '@bunryu/platform/testing';
import type { FastifyInstance } from 'fastify';
import { ALLOWED_FROM } from '@bunryu/core';
import { buildApp } from '../src/app.ts';
import { compose } from '../src/compose.ts';
import { ConfigSchema } from '../src/config.ts';
import { MemorySessionStore } from '../src/session/session-store.ts';
import { RedisSessionStore } from '../src/session/redis-session-store.ts';
import { upstreamPath } from '../src/proxy/proxy-routes.ts';
import { fakeExperimentService, type Received } from './support/fake-experiment-service.ts';
import { fakeAggregator } from './support/fake-aggregator.ts';
import { freePort } from './support/services.ts';

const ADMIN = 'admin-secret-token-1';
const VIEWER = 'viewer-secret-token-2';
const REVOKED = 'soon-revoked-token-3';
const tokens: Record<string, { role: string; name: string }> = {
  [ADMIN]: { role: 'admin', name: 'ada' },
  [VIEWER]: { role: 'viewer', name: 'vic' },
  [REVOKED]: { role: 'editor', name: 'eve' },
};

async function startDashboard(esUrl: string, aggUrl: string) {
  const config = ConfigSchema.parse({ EXPERIMENT_SERVICE_URL: esUrl, AGGREGATOR_URL: aggUrl, LOG_LEVEL: 'silent', UPSTREAM_TIMEOUT_MS: '2000', DASHBOARD_SESSIONS: 'memory' });
  const app = await buildApp(config, await compose(config));
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url };
}

/** Every answer a browser got during the suite, to check the token never appears in one. */
const seen: string[] = [];

async function call(base: string, method: string, path: string, opts: { cookie?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), redirect: 'manual' });
  const text = await res.text();
  const headerLines: string[] = [];
  res.headers.forEach((v, k) => headerLines.push(`${k}: ${v}`));
  seen.push(headerLines.join('\n') + text);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- assertions read arbitrary JSON
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, text, json };
}

async function signIn(base: string, token: string): Promise<string> {
  const res = await call(base, 'POST', '/api/session', { body: { token } });
  expect(res.status).toBe(200);
  const cookie = res.headers.get('set-cookie')!;
  return cookie.split(';')[0]!;
}

describe('dashboard backend-for-frontend', () => {
  let es: { app: FastifyInstance; received: Received[] };
  let agg: ReturnType<typeof fakeAggregator>;
  let dash: { app: FastifyInstance; url: string };

  beforeAll(async () => {
    es = fakeExperimentService(tokens);
    agg = fakeAggregator([ADMIN, VIEWER]);
    const esUrl = await es.app.listen({ port: 0, host: '127.0.0.1' });
    const aggUrl = await agg.app.listen({ port: 0, host: '127.0.0.1' });
    dash = await startDashboard(esUrl, aggUrl);
  });
  afterAll(async () => {
    await dash?.app.close();
    await es?.app.close();
    await agg?.app.close();
    // Whatever happened above, no answer to the browser carried a token.
    for (const body of seen) for (const t of Object.keys(tokens)) expect(body).not.toContain(t);
  });

  it("serves the browser core's status-transition table, the one the experiment-service enforces", async () => {
    const res = await fetch(`${dash.url}/js/lib/lifecycle-table.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    const table = JSON.parse(/^export const ALLOWED_FROM = (.*);$/m.exec(await res.text())![1]!);
    expect(table).toEqual({ ...ALLOWED_FROM, edit: ALLOWED_FROM.update });
    expect(table.rollback).toContain('released');
  });

  it('serves the UI with a strict content security policy and the vendored libraries', async () => {
    const index = await call(dash.url, 'GET', '/');
    expect(index.status).toBe(200);
    expect(index.text).toContain('<div id="app">');
    const csp = index.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self' 'sha256-");
    expect(csp).toContain("frame-ancestors 'none'");
    for (const file of ['preact.mjs', 'preact-hooks.mjs', 'htm.mjs', 'chart.umd.min.js']) {
      const res = await call(dash.url, 'GET', `/vendor/${file}`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/javascript/);
    }
    expect((await call(dash.url, 'GET', '/vendor/package.json')).status).toBe(404);
    expect((await call(dash.url, 'GET', '/js/app.js')).status).toBe(200);
  });

  it('signs in with a token the experiment-service accepts and keeps it server-side', async () => {
    const res = await call(dash.url, 'POST', '/api/session', { body: { token: ADMIN } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ role: 'admin', name: 'ada' });
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^bunryu_session=[A-Za-z0-9_-]{40,};/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).not.toContain(ADMIN);
    const me = await call(dash.url, 'GET', '/api/session', { cookie: cookie.split(';')[0] });
    expect(me.json).toEqual({ role: 'admin', name: 'ada' });
  });

  it('refuses a token the experiment-service does not know, and an empty one', async () => {
    const bad = await call(dash.url, 'POST', '/api/session', { body: { token: 'not-a-real-token' } });
    expect(bad.status).toBe(401);
    expect(bad.json.error.code).toBe('BUNRYU_UNAUTHORIZED');
    expect(bad.headers.get('set-cookie')).toBeNull();
    const empty = await call(dash.url, 'POST', '/api/session', { body: { token: '  ' } });
    expect(empty.status).toBe(400);
    expect(empty.json.error.details.fields[0].path).toBe('token');
  });

  it('answers 401 without a session and never reaches the upstreams', async () => {
    const before = es.received.length + agg.received.length;
    for (const path of ['/api/session', '/api/es/v1/echo/a', '/api/agg/v1/echo/a']) {
      const res = await call(dash.url, 'GET', path);
      expect(res.status, path).toBe(401);
      expect(res.json.error.code).toBe('BUNRYU_UNAUTHORIZED');
    }
    const forged = await call(dash.url, 'GET', '/api/es/v1/echo/a', { cookie: 'bunryu_session=forged' });
    expect(forged.status).toBe(401);
    expect(es.received.length + agg.received.length).toBe(before);
  });

  it('forwards method, path, query, body and If-Match to the experiment-service with the bearer token', async () => {
    const cookie = await signIn(dash.url, ADMIN);
    const res = await call(dash.url, 'PUT', '/api/es/v1/echo/experiments/x?dry=1&a=%20b', {
      cookie,
      body: { name: 'n', nested: [1, 2] },
      headers: { 'if-match': '3', 'x-forwarded-for': '1.2.3.4' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('"7"');
    expect(res.headers.get('set-cookie')).toBeNull(); // upstream cookies stay upstream
    const got = es.received.at(-1)!;
    expect(got.method).toBe('PUT');
    expect(got.url).toBe('/v1/echo/experiments/x?dry=1&a=%20b');
    expect(got.body).toEqual({ name: 'n', nested: [1, 2] });
    expect(got.headers.authorization).toBe(`Bearer ${ADMIN}`);
    expect(got.headers['if-match']).toBe('3');
    expect(got.headers.cookie).toBeUndefined(); // the session cookie is the dashboard's business
    expect(got.headers['x-forwarded-for']).toBeUndefined();
  });

  it("forwards reads to the aggregator with the session's token, and refuses writes there", async () => {
    const cookie = await signIn(dash.url, VIEWER);
    agg.results.set('exp-1', { experiment: 'exp-1', variants: [] });
    const res = await call(dash.url, 'GET', '/api/agg/v1/results/exp-1', { cookie });
    expect(res.status).toBe(200);
    expect(res.json.experiment).toBe('exp-1');
    await call(dash.url, 'GET', '/api/agg/v1/echo/q?metric=ctr', { cookie });
    const got = agg.received.at(-1)!;
    expect(got.url).toBe('/v1/echo/q?metric=ctr');
    expect(got.headers.authorization).toBe(`Bearer ${VIEWER}`);
    const post = await call(dash.url, 'POST', '/api/agg/v1/echo/q', { cookie, body: {} });
    expect(post.status).toBe(404);
  });

  it("passes the aggregator's 401 on without ending the session", async () => {
    const cookie = await signIn(dash.url, REVOKED);
    agg.results.set('exp-1', { experiment: 'exp-1', variants: [] });
    const res = await call(dash.url, 'GET', '/api/agg/v1/results/exp-1', { cookie });
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect((await call(dash.url, 'GET', '/api/session', { cookie })).status).toBe(200);
  });

  it('passes the service\'s errors through: 400 with the fields, 403 for a low role', async () => {
    const admin = await signIn(dash.url, ADMIN);
    const invalid = await call(dash.url, 'POST', '/api/es/v1/experiments', {
      cookie: admin,
      body: { key: 'Bad Key', route: 'r', variants: [{ key: 'a', weight: 60 }, { key: 'b', weight: 30 }] },
    });
    expect(invalid.status).toBe(400);
    const paths = invalid.json.error.details.fields.map((f: { path: string }) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['key', 'variants']));

    const viewer = await signIn(dash.url, VIEWER);
    const refused = await call(dash.url, 'PUT', '/api/es/v1/routes/r', { cookie: viewer, body: { upstream: 'http://127.0.0.1:1' } });
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe('BUNRYU_FORBIDDEN');
  });

  it('refuses cross-origin writes even with a valid session', async () => {
    const cookie = await signIn(dash.url, ADMIN);
    const before = es.received.length;
    const evil = await call(dash.url, 'POST', '/api/es/v1/echo/x', { cookie, body: {}, headers: { origin: 'http://evil.example' } });
    expect(evil.status).toBe(403);
    const site = await call(dash.url, 'POST', '/api/es/v1/echo/x', { cookie, body: {}, headers: { 'sec-fetch-site': 'cross-site' } });
    expect(site.status).toBe(403);
    expect(es.received.length).toBe(before);
    const same = await call(dash.url, 'POST', '/api/es/v1/echo/x', { cookie, body: {}, headers: { origin: dash.url } });
    expect(same.status).toBe(200);
  });

  it('only reaches the versioned API: no path tricks', async () => {
    const cookie = await signIn(dash.url, ADMIN);
    const before = es.received.length;
    for (const path of ['/api/es/metrics', '/api/es/v1/../metrics', '/api/es/v1/%2e%2e/metrics', '/api/es/v1/echo/..%2f..%2fx', '/api/es/v1//echo']) {
      const res = await call(dash.url, 'GET', path, { cookie });
      expect(res.status, path).toBe(404);
    }
    expect(es.received.length).toBe(before);
    expect(upstreamPath('/api/es/v1/experiments/a.b-c?x=1', '/api/es')).toBe('/v1/experiments/a.b-c?x=1');
    // fetch normalises dot segments before sending, so check the raw forms directly too.
    for (const raw of ['/api/es/v1/../metrics', '/api/es/v1/./x', '/api/es/v1/a/..', '/api/es/v1/a\\b', '/api/es/v1']) {
      expect(() => upstreamPath(raw, '/api/es'), raw).toThrow();
    }
  });

  it('ends the session when the experiment-service stops accepting its token', async () => {
    const cookie = await signIn(dash.url, REVOKED);
    delete tokens[REVOKED];
    const res = await call(dash.url, 'GET', '/api/es/v1/experiments', { cookie });
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toContain('Max-Age=0');
    expect((await call(dash.url, 'GET', '/api/session', { cookie })).status).toBe(401);
    tokens[REVOKED] = { role: 'editor', name: 'eve' };
  });

  it('signs out', async () => {
    const cookie = await signIn(dash.url, ADMIN);
    const out = await call(dash.url, 'DELETE', '/api/session', { cookie });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    expect((await call(dash.url, 'GET', '/api/es/v1/experiments', { cookie })).status).toBe(401);
  });
});

describe('dashboard upstream edge cases', () => {
  it('signs in with an unknown role when the service has no /v1/whoami', async () => {
    const es = fakeExperimentService({ [ADMIN]: { role: 'admin', name: 'ada' } }, { whoami: false });
    const esUrl = await es.app.listen({ port: 0, host: '127.0.0.1' });
    const dash = await startDashboard(esUrl, 'http://127.0.0.1:9');
    try {
      const ok = await call(dash.url, 'POST', '/api/session', { body: { token: ADMIN } });
      expect(ok.status).toBe(200);
      expect(ok.json).toEqual({ role: null, name: null });
      expect((await call(dash.url, 'POST', '/api/session', { body: { token: 'nope-nope-nope' } })).status).toBe(401);
    } finally {
      await dash.app.close();
      await es.app.close();
    }
  });

  it('answers 502 naming the service when an upstream is down, and /readyz says which', async () => {
    const es = fakeExperimentService({ [ADMIN]: { role: 'admin', name: 'ada' } });
    const esUrl = await es.app.listen({ port: 0, host: '127.0.0.1' });
    const dash = await startDashboard(esUrl, 'http://127.0.0.1:9');
    try {
      const cookie = await signIn(dash.url, ADMIN);
      const res = await call(dash.url, 'GET', '/api/agg/v1/results/x', { cookie });
      expect(res.status).toBe(502);
      expect(res.json.error).toEqual({ code: 'BUNRYU_UPSTREAM_FAILED', message: 'aggregator is unreachable' });
      const ready = await call(dash.url, 'GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.json.checks['experiment-service']).toBe('ok');
      expect(ready.json.checks.aggregator).not.toBe('ok');
      await es.app.close();
      const down = await call(dash.url, 'POST', '/api/session', { body: { token: ADMIN } });
      expect(down.status).toBe(502);
    } finally {
      await dash.app.close();
    }
  });
});

describe('MemorySessionStore', () => {
  it('expires a session after the idle time, and each use extends it', async () => {
    let now = 0;
    const store = new MemorySessionStore({ idleMs: 1000, now: () => now });
    const id = await store.create('t', { role: 'viewer', name: 'v' });
    now = 900;
    expect((await store.get(id))?.token).toBe('t');
    now = 1800; // 900 ms after the last use
    expect((await store.get(id))?.token).toBe('t');
    now = 2801;
    expect(await store.get(id)).toBeUndefined();
  });

  it('drops the least recently used session beyond its capacity', async () => {
    let now = 0;
    const store = new MemorySessionStore({ idleMs: 10_000, maxSessions: 2, now: () => now });
    const a = await store.create('a', { role: null, name: null });
    const b = await store.create('b', { role: null, name: null });
    now = 1;
    await store.get(a); // a is now fresher than b
    const c = await store.create('c', { role: null, name: null });
    expect(await store.get(b)).toBeUndefined();
    expect((await store.get(a))?.token).toBe('a');
    expect((await store.get(c))?.token).toBe('c');
    expect(store.size).toBe(2);
  });

  it('makes unguessable, distinct ids', async () => {
    const store = new MemorySessionStore({ idleMs: 1000 });
    const ids = new Set(await Promise.all(Array.from({ length: 100 }, () => store.create('t', { role: null, name: null }))));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('RedisSessionStore', () => {
  const identity = { role: 'admin', name: 'ada' } as const;

  it('serves a request made the moment it starts, while its connection is still being made', async () => {
    const redis = await integrationServer('REDIS_URL', 'redis://127.0.0.1:6379');
    if (!redis.url) return;
    const store = new RedisSessionStore({ url: redis.url, prefix: `bunryu-test-${process.pid}-${Date.now()}:`, idleMs: 60_000 });
    try {
      const id = await store.create(ADMIN, identity);
      expect(await store.get(id)).toMatchObject({ token: ADMIN, ...identity });
    } finally {
      await store.close();
    }
  });

  it('refuses with BUNRYU_NOT_READY within about a second when Redis is away', async () => {
    const store = new RedisSessionStore({ url: `redis://127.0.0.1:${await freePort()}`, prefix: 'bunryu-test:', idleMs: 60_000 });
    try {
      const started = performance.now();
      await expect(store.create(ADMIN, identity)).rejects.toMatchObject({ code: 'BUNRYU_NOT_READY' });
      expect(performance.now() - started).toBeLessThan(3000);
    } finally {
      await store.close();
    }
  });
});

describe('the session cookie and where sessions live', () => {
  let es: { app: FastifyInstance };
  let esUrl: string;
  const started: { close(): Promise<unknown> }[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    es = fakeExperimentService(tokens);
    esUrl = await es.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await Promise.all(started.map((s) => s.close()));
    await es?.app.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function dashboard(env: Record<string, string>) {
    const config = ConfigSchema.parse({ EXPERIMENT_SERVICE_URL: esUrl, AGGREGATOR_URL: 'http://127.0.0.1:9', LOG_LEVEL: 'silent', ...env });
    const deps = await compose(config);
    const app = await buildApp(config, deps);
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const handle = { url, close: async () => { await app.close(); await deps.close(); } };
    started.push(handle);
    return handle;
  }
  const signInCookie = async (url: string, headers: Record<string, string> = {}) =>
    (await call(url, 'POST', '/api/session', { body: { token: ADMIN }, headers })).headers.get('set-cookie')!;

  it('answers 429 with Retry-After to a browser address after too many refused sign-ins, per address', async () => {
    const dash = await dashboard({ DASHBOARD_SESSIONS: 'memory', BUNRYU_AUTH_FAILURE_LIMIT: '2', TRUST_PROXY: '127.0.0.1' });
    const from = (ip: string, token: string) => call(dash.url, 'POST', '/api/session', { body: { token }, headers: { 'x-forwarded-for': ip } });
    expect((await from('198.51.100.1', 'guess-one-xxxx')).status).toBe(401);
    expect((await from('198.51.100.1', 'guess-two-xxxx')).status).toBe(401);
    const limited = await from('198.51.100.1', ADMIN);
    expect(limited.status).toBe(429);
    expect(limited.json.error.code).toBe('BUNRYU_RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await from('198.51.100.2', ADMIN)).status).toBe(200);
  });

  it('marks the cookie Secure behind a trusted proxy that says https, and only then', async () => {
    const trusting = await dashboard({ DASHBOARD_SESSIONS: 'memory', TRUST_PROXY: '127.0.0.1' });
    expect(await signInCookie(trusting.url, { 'x-forwarded-proto': 'https' })).toMatch(/; Secure$/);
    expect(await signInCookie(trusting.url)).not.toMatch(/Secure/);
    // Anyone can send the header: from an address not trusted it says nothing.
    const untrusting = await dashboard({ DASHBOARD_SESSIONS: 'memory' });
    expect(await signInCookie(untrusting.url, { 'x-forwarded-proto': 'https' })).not.toMatch(/Secure/);
    const always = await dashboard({ DASHBOARD_SESSIONS: 'memory', COOKIE_SECURE: 'true' });
    expect(await signInCookie(always.url)).toMatch(/; Secure$/);
  });

  it('keeps sessions in a file across a restart (mode 0600, no session id in it)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bunryu-dashboard-sessions-'));
    dirs.push(dir);
    const first = await dashboard({ BUNRYU_DATA_DIR: dir });
    const cookie = (await signInCookie(first.url)).split(';')[0]!;
    expect((await call(first.url, 'GET', '/api/session', { cookie })).status).toBe(200);
    await first.close();
    const file = join(dir, 'dashboard', 'sessions.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).not.toContain(cookie.split('=')[1]!);
    const second = await dashboard({ BUNRYU_DATA_DIR: dir });
    expect((await call(second.url, 'GET', '/api/session', { cookie })).json).toEqual({ role: 'admin', name: 'ada' });
    expect((await call(second.url, 'DELETE', '/api/session', { cookie })).status).toBe(204);
    await second.close();
    const third = await dashboard({ BUNRYU_DATA_DIR: dir });
    expect((await call(third.url, 'GET', '/api/session', { cookie })).status).toBe(401);
  });

  it('shares sessions between two replicas through Redis', async () => {
    const redis = await integrationServer('REDIS_URL', 'redis://127.0.0.1:6379');
    if (!redis.url) return;
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: `bunryu-test-${process.pid}-${Date.now()}:` };
    const [a, b] = [await dashboard(env), await dashboard(env)];
    const cookie = (await signInCookie(a.url)).split(';')[0]!;
    expect((await call(b.url, 'GET', '/api/session', { cookie })).json).toEqual({ role: 'admin', name: 'ada' });
    expect((await call(b.url, 'DELETE', '/api/session', { cookie })).status).toBe(204);
    expect((await call(a.url, 'GET', '/api/session', { cookie })).status).toBe(401);
    expect((await call(a.url, 'GET', '/readyz')).json.checks.sessions).toBe('ok');
  });
});

describe('the model-server through the dashboard', () => {
  it('forwards reads of /api/ms/v1/* to signed-in users only, and no writes', async () => {
    const received: { method: string; url: string; authorization?: string }[] = [];
    const { createServer } = await import('node:http');
    const ms = createServer((req, res) => {
      received.push({ method: req.method!, url: req.url!, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ models: [{ name: 'recommend', versions: [] }] }));
    });
    await new Promise<void>((r) => ms.listen(0, '127.0.0.1', r));
    const es = fakeExperimentService(tokens);
    const esUrl = await es.app.listen({ port: 0, host: '127.0.0.1' });
    const config = ConfigSchema.parse({ EXPERIMENT_SERVICE_URL: esUrl, MODEL_SERVER_URL: `http://127.0.0.1:${(ms.address() as { port: number }).port}`, LOG_LEVEL: 'silent' });
    const app = await buildApp(config, await compose(config));
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      expect((await call(url, 'GET', '/api/ms/v1/models')).status).toBe(401);
      const cookie = await signIn(url, ADMIN);
      const res = await call(url, 'GET', '/api/ms/v1/models', { cookie });
      expect(res.status).toBe(200);
      expect(res.json.models[0].name).toBe('recommend');
      const write = await call(url, 'POST', '/api/ms/v1/models/reload', { cookie, body: {} });
      expect(write.status).toBe(404);
      expect(received).toEqual([{ method: 'GET', url: '/v1/models', authorization: `Bearer ${ADMIN}` }]);
    } finally {
      await app.close();
      await es.app.close();
      await new Promise<void>((r) => ms.close(() => r()));
    }
  });
});
