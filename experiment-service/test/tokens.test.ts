import { describe, expect, it } from 'vitest';
import { ConfigError, parseEnv } from '@bunryu/core';
import { DEFAULT_ADMIN_TOKEN, TokenAuthenticator, parseTokenList, resolveTokens } from '@bunryu/platform/auth';
import { ConfigSchema } from '../src/config.ts';
import { startApp, storeFixture } from './support/service.ts';

describe('BUNRYU_TOKENS', () => {
  it('reads role:token and role:name:token, naming unnamed tokens <role>-<n>', () => {
    expect(parseTokenList('viewer:aaaaaaaa, editor:pm-ann:bbbbbbbb,viewer:cccccccc,releaser:rm:dd:dd:dd:dd')).toEqual({
      tokens: [
        { role: 'viewer', name: 'viewer-1', token: 'aaaaaaaa' },
        { role: 'editor', name: 'pm-ann', token: 'bbbbbbbb' },
        { role: 'viewer', name: 'viewer-2', token: 'cccccccc' },
        { role: 'releaser', name: 'rm', token: 'dd:dd:dd:dd' },
      ],
      errors: [],
    });
  });

  it('reports unknown roles, short tokens and reused tokens', () => {
    const { errors } = parseTokenList('owner:aaaaaaaa,viewer:short,editor:bbbbbbbb,admin:bbbbbbbb,viewer');
    expect(errors).toHaveLength(4);
    expect(errors.join('\n')).toMatch(/role must be one of viewer, editor, reviewer, releaser, admin \(got "owner"\)/);
    expect(errors.join('\n')).toMatch(/at least 8 characters/);
    expect(errors.join('\n')).toMatch(/used twice/);
  });

  it('stops the service with a line naming the variable', () => {
    expect(() => parseEnv(ConfigSchema, { BUNRYU_TOKENS: 'owner:aaaaaaaa' })).toThrow(ConfigError);
    expect(() => parseEnv(ConfigSchema, { BUNRYU_TOKENS: 'owner:aaaaaaaa' })).toThrow(/BUNRYU_TOKENS: entry 1/);
    expect(() => parseEnv(ConfigSchema, { REDIS_URL: 'http://x' })).toThrow(/REDIS_URL/);
  });
});

describe('resolveTokens', () => {
  it('falls back to the default admin token only when no token is configured at all', () => {
    expect(resolveTokens({})).toEqual({ tokens: [{ role: 'admin', name: 'admin', token: DEFAULT_ADMIN_TOKEN }], defaultInUse: true });
    const onlyViewers = resolveTokens({ BUNRYU_TOKENS: [{ role: 'viewer', name: 'v', token: 'vvvvvvvv' }] });
    expect(onlyViewers.defaultInUse).toBe(false);
    expect(onlyViewers.tokens.map((t) => t.token)).toEqual(['vvvvvvvv']);
    expect(resolveTokens({ BUNRYU_ADMIN_TOKEN: 'secret-admin' }).tokens).toEqual([{ role: 'admin', name: 'admin', token: 'secret-admin' }]);
  });
});

describe('TokenAuthenticator', () => {
  const auth = new TokenAuthenticator([
    { role: 'editor', name: 'pm', token: 'editor-token' },
    { role: 'admin', name: 'admin', token: 'admin-token' },
  ]);

  it('knows callers by bearer token, case-insensitive scheme', () => {
    expect(auth.authenticate('Bearer editor-token')).toEqual({ role: 'editor', name: 'pm' });
    expect(auth.authenticate('bearer admin-token')).toEqual({ role: 'admin', name: 'admin' });
  });

  it('answers 401 to a missing, malformed or unknown token and 403 to a lower role', () => {
    for (const header of [undefined, '', 'editor-token', 'Basic editor-token', 'Bearer editor-toke', 'Bearer editor-token x']) {
      expect(() => auth.authenticate(header)).toThrow(expect.objectContaining({ statusCode: 401 }));
    }
    expect(() => auth.authorize('Bearer editor-token', 'releaser')).toThrow(expect.objectContaining({ statusCode: 403, code: 'BUNRYU_FORBIDDEN' }));
    expect(auth.authorize('Bearer admin-token', 'releaser')).toEqual({ role: 'admin', name: 'admin' });
    expect(auth.authorize('Bearer editor-token', 'viewer').role).toBe('editor');
  });
});

describe('failed token attempts per client address', () => {
  const limited = () => {
    let now = 1_000_000;
    const auth = new TokenAuthenticator([{ role: 'viewer', name: 'v', token: 'viewer-token' }], { failureLimit: 3, windowMs: 60_000, maxClients: 2, now: () => now });
    return { auth, advance: (ms: number) => (now += ms) };
  };
  const attempt = (auth: TokenAuthenticator, header: string | undefined, client: string) => {
    try {
      auth.authorize(header, 'viewer', client);
      return 200;
    } catch (err) {
      return (err as { statusCode: number }).statusCode;
    }
  };

  it('refuses every token from an address with 429 after the limit, until its minute is over; other addresses go on', () => {
    const { auth, advance } = limited();
    expect([1, 2, 3].map(() => attempt(auth, 'Bearer guess', '10.0.0.1'))).toEqual([401, 401, 401]);
    expect(attempt(auth, 'Bearer viewer-token', '10.0.0.1')).toBe(429);
    try {
      auth.authorize('Bearer viewer-token', 'viewer', '10.0.0.1');
    } catch (err) {
      expect(err).toMatchObject({ code: 'BUNRYU_RATE_LIMITED', details: { retryAfterSeconds: 60 } });
    }
    expect(attempt(auth, 'Bearer viewer-token', '10.0.0.2')).toBe(200);
    advance(59_000);
    expect(attempt(auth, 'Bearer viewer-token', '10.0.0.1')).toBe(429);
    advance(1_000);
    expect(attempt(auth, 'Bearer viewer-token', '10.0.0.1')).toBe(200);
  });

  it('counts 401s only (a known token with too low a role is no guess), and forgets the oldest addresses first', () => {
    const { auth } = limited();
    for (let i = 0; i < 5; i++) expect(attempt(auth, 'Bearer viewer-token', '10.0.0.1')).toBe(200);
    expect(() => auth.authorize('Bearer viewer-token', 'admin', '10.0.0.1')).toThrow(expect.objectContaining({ statusCode: 403 }));
    expect(attempt(auth, 'Bearer viewer-token', '10.0.0.1')).toBe(200);
    for (let i = 0; i < 3; i++) attempt(auth, 'Bearer guess', '10.0.0.3');
    attempt(auth, 'Bearer guess', '10.0.0.4');
    attempt(auth, 'Bearer guess', '10.0.0.5'); // a third address: 10.0.0.3 is forgotten
    expect(attempt(auth, 'Bearer viewer-token', '10.0.0.3')).toBe(200);
  });

  it('answers 429 with Retry-After over HTTP', async () => {
    const fixture = await storeFixture('file', undefined);
    const t = await startApp(fixture, { BUNRYU_AUTH_FAILURE_LIMIT: '2' });
    try {
      const me = (token: string) => t.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}` }, remoteAddress: '192.0.2.7' });
      expect((await me('wrong-token-1')).statusCode).toBe(401);
      expect((await me('wrong-token-2')).statusCode).toBe(401);
      const r = await me('wrong-token-3');
      expect(r.statusCode).toBe(429);
      expect(r.headers['retry-after']).toBe('60');
      expect(r.json().error.code).toBe('BUNRYU_RATE_LIMITED');
    } finally {
      await t.close();
      await fixture.cleanup();
    }
  });
});

describe('a service started without tokens', () => {
  it('accepts the default admin token and no other', async () => {
    const fixture = await storeFixture('file', undefined);
    const t = await startApp(fixture, { BUNRYU_ADMIN_TOKEN: '', BUNRYU_TOKENS: '' });
    try {
      const me = await t.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${DEFAULT_ADMIN_TOKEN}` } });
      expect(me.json()).toEqual({ role: 'admin', name: 'admin' });
      expect((await t.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: 'Bearer admin-token-0001' } })).statusCode).toBe(401);
      for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs']) {
        expect({ url, status: (await t.app.inject({ method: 'GET', url })).statusCode }).toEqual({ url, status: 200 });
      }
    } finally {
      await t.close();
      await fixture.cleanup();
    }
  });
});
