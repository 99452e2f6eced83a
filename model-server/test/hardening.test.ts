import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModelCopy, instance, removeTempDirs, startApp, type TestApp } from './support/models.ts';

let t: TestApp;
let url: string;

beforeAll(async () => {
  t = await startApp(await demoModelCopy(), {
    BUNRYU_TOKENS: 'viewer:viewer-token-1,admin:admin-token-1',
    BUNRYU_AUTH_FAILURE_LIMIT: '3',
  });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await t.close();
  await removeTempDirs();
});

const reload = (token?: string, ip?: string) =>
  t.app.inject({ method: 'POST', url: '/v1/models/reload', headers: token ? { authorization: `Bearer ${token}` } : {}, ...(ip ? { remoteAddress: ip } : {}) });

describe('POST /v1/models/reload', () => {
  it('needs an admin token: 401 without one, 403 for a viewer', async () => {
    const none = await reload(undefined, '10.0.0.1');
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe('BUNRYU_UNAUTHORIZED');
    const viewer = await reload('viewer-token-1', '10.0.0.1');
    expect(viewer.statusCode).toBe(403);
    expect((await reload('admin-token-1', '10.0.0.1')).statusCode).toBe(200);
  });

  it('answers 429 with Retry-After to an address that keeps guessing, even with a good token, and not to others', async () => {
    for (let i = 0; i < 3; i++) expect((await reload(`guess-${i}-xxxxxxxx`, '10.0.0.9')).statusCode).toBe(401);
    const limited = await reload('admin-token-1', '10.0.0.9');
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('BUNRYU_RATE_LIMITED');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect((await reload('admin-token-1', '10.0.0.10')).statusCode).toBe(200);
  });
});

describe('feature values on a direct call', () => {
  const predict = (body: string) => fetch(`${url}/v1/models/recommend/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  it.each([
    ['a string', '"abc"'],
    ['a number too large for a double', '1e999'],
    ['null', 'null'],
  ])('refuses %s even in a feature the default version does not read, naming it', async (_what, price) => {
    const body = JSON.stringify({ instances: [instance()] }).replace('"price":18', `"price":${price}`);
    const res = await predict(body);
    expect(res.status).toBe(400);
    const error = ((await res.json()) as { error: { code: string; message: string; details: { fields: { path: string }[] } } }).error;
    expect(error.code).toBe('BUNRYU_VALIDATION');
    expect(error.details.fields.map((f) => f.path)).toEqual(['instances.0.price']);
    expect(error.message).toMatch(/^instances\.0\.price: /);
  });

  it('still answers finite numbers', async () => {
    expect((await predict(JSON.stringify({ instances: [instance()] }))).status).toBe(200);
  });
});
