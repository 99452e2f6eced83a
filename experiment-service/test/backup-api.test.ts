import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { integrationServer } from '@bunryu/platform/testing';
import { bearer, definition, seed, startApp, storeFixture, type StoreFixture, type TestApp } from './support/service.ts';

const redis = await integrationServer('REDIS_URL', 'redis://127.0.0.1:6379');

describe.each(['file', 'redis'] as const)('export and import on the %s store', (kind) => {
  describe.skipIf(kind === 'redis' && !redis.url)(`${kind}`, () => {
    let fixtures: StoreFixture[];
    let apps: TestApp[];
    const start = async () => {
      const fixture = await storeFixture(kind, redis.url);
      fixtures.push(fixture);
      const t = await startApp(fixture);
      apps.push(t);
      return t;
    };
    beforeEach(() => {
      fixtures = [];
      apps = [];
    });
    afterEach(async () => {
      for (const t of apps) await t.close();
      for (const f of fixtures) await f.cleanup();
    });

    async function populated(): Promise<TestApp> {
      const t = await start();
      await seed(t.app);
      const created = await t.app.inject({ method: 'POST', url: '/v1/experiments', headers: bearer('editor'), payload: definition() });
      expect(created.statusCode).toBe(201);
      const started = await t.app.inject({ method: 'POST', url: '/v1/experiments/ranker-v2/start', headers: { ...bearer('releaser'), 'if-match': '"1"' } });
      expect(started.statusCode).toBe(200);
      await t.app.inject({ method: 'POST', url: '/v1/experiments', headers: bearer('editor'), payload: definition({ key: 'draft-one', layer: 'other' }) });
      return t;
    }

    it('round-trips every route, metric, experiment and audit entry into an empty store, byte for byte apart from the epoch', async () => {
      const source = await populated();
      const exported = await source.app.inject({ method: 'GET', url: '/v1/export', headers: bearer('admin') });
      expect(exported.statusCode).toBe(200);
      const doc = exported.json();
      expect(doc.experiments.map((e: { key: string }) => e.key)).toEqual(['draft-one', 'ranker-v2']);
      expect(doc.audit.length).toBeGreaterThanOrEqual(5);
      const config = (await source.app.inject({ method: 'GET', url: '/v1/config', headers: bearer('viewer') })).body;

      const target = await start();
      const imported = await target.app.inject({ method: 'POST', url: '/v1/import', headers: { ...bearer('admin'), 'content-type': 'application/json' }, payload: exported.body });
      expect(imported.statusCode).toBe(200);
      const epoch = imported.json().epoch as string;
      expect(epoch).not.toBe(doc.epoch);
      const again = await target.app.inject({ method: 'GET', url: '/v1/export', headers: bearer('admin') });
      expect(again.body.replace(epoch, 'E')).toBe(exported.body.replace(doc.epoch, 'E'));
      const targetConfig = (await target.app.inject({ method: 'GET', url: '/v1/config', headers: bearer('viewer') })).body;
      expect(targetConfig.replace(epoch, 'E')).toBe(config.replace(doc.epoch, 'E'));
    });

    it('lets only an admin export or import', async () => {
      const t = await populated();
      for (const role of ['viewer', 'editor', 'releaser'] as const) {
        expect((await t.app.inject({ method: 'GET', url: '/v1/export', headers: bearer(role) })).statusCode).toBe(403);
        expect((await t.app.inject({ method: 'POST', url: '/v1/import', headers: bearer(role), payload: {} })).statusCode).toBe(403);
      }
      expect((await t.app.inject({ method: 'GET', url: '/v1/export' })).statusCode).toBe(401);
    });

    it('answers 400 naming the field of a bad document, and 409 over data, writing nothing', async () => {
      const source = await populated();
      const doc = (await source.app.inject({ method: 'GET', url: '/v1/export', headers: bearer('admin') })).json();
      const target = await start();
      const attempt = (payload: unknown) => target.app.inject({ method: 'POST', url: '/v1/import', headers: bearer('admin'), payload: payload as object });
      const fieldsOf = (r: { json(): { error: { details: { fields: { path: string }[] } } } }) => r.json().error.details.fields.map((f) => f.path);

      const badRoute = await attempt({ ...doc, routes: [{ ...doc.routes[0], upstream: 'ftp://nope' }] });
      expect(badRoute.statusCode).toBe(400);
      expect(fieldsOf(badRoute)).toContain('routes.0.upstream');
      const twice = await attempt({ ...doc, experiments: [doc.experiments[0], doc.experiments[0]] });
      expect(twice.statusCode).toBe(400);
      expect(fieldsOf(twice)).toContain('experiments.1.key');
      const future = await attempt({ ...doc, audit: [...doc.audit, { ...doc.audit[0], configVersion: doc.version + 1 }] });
      expect(future.statusCode).toBe(400);
      expect(fieldsOf(future)).toContain(`audit.${doc.audit.length}.configVersion`);
      const extra = await attempt({ ...doc, surprise: 1 });
      expect(extra.statusCode).toBe(400);
      // Nothing of the refused documents was written.
      const empty = (await target.app.inject({ method: 'GET', url: '/v1/export', headers: bearer('admin') })).json();
      expect(empty).toMatchObject({ version: 0, experiments: [], routes: [], metrics: [], audit: [] });

      const over = await source.app.inject({ method: 'POST', url: '/v1/import', headers: bearer('admin'), payload: doc });
      expect(over.statusCode).toBe(409);
      expect(over.json().error.message).toMatch(/not empty/);
      expect((await source.app.inject({ method: 'GET', url: '/v1/export', headers: bearer('admin') })).json()).toEqual(doc);
    });
  });
});
