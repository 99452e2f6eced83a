import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { integrationServer } from '@bunryu/platform/testing';
import { bearer, definition, seed, startApp, storeFixture, type StoreFixture, type TestApp, type TestRole } from './support/service.ts';

const redis = await integrationServer('REDIS_URL', 'redis://127.0.0.1:6379');

interface ErrorJson {
  error: { code: string; message: string; details?: { fields?: { path: string; message: string }[] } & Record<string, unknown> };
}

describe.each(['file', 'redis'] as const)('experiments API on the %s store', (kind) => {
  describe.skipIf(kind === 'redis' && !redis.url)(`${kind}`, () => {
    let fixture: StoreFixture;
    let t: TestApp;
    let app: FastifyInstance;

    beforeEach(async () => {
      fixture = await storeFixture(kind, redis.url);
      t = await startApp(fixture);
      app = t.app;
      await seed(app);
    });
    afterEach(async () => {
      await t.close();
      await fixture.cleanup();
    });

    const call = (method: 'GET' | 'POST' | 'PUT', url: string, role: TestRole | null = 'admin', payload?: unknown, headers: Record<string, string> = {}) =>
      app.inject({ method, url, headers: { ...(role ? bearer(role) : {}), ...headers }, ...(payload === undefined ? {} : { payload: payload as object }) });
    const create = (overrides = {}) => call('POST', '/v1/experiments', 'editor', definition(overrides));
    const act = (key: string, action: string, role: TestRole = 'admin', payload?: unknown, headers: Record<string, string> = {}) =>
      call('POST', `/v1/experiments/${key}/${action}`, role, payload, headers);
    const error = (r: LightMyRequestResponse) => r.json<ErrorJson>().error;
    const fieldPaths = (r: LightMyRequestResponse) => (error(r).details?.fields ?? []).map((f) => f.path);

    describe('create', () => {
      it('answers 201 with status draft, version 1, the allocation, an ETag and a Location', async () => {
        const r = await create();
        expect(r.statusCode).toBe(201);
        const e = r.json();
        expect(e).toMatchObject({ key: 'ranker-v2', status: 'draft', version: 1, layer: 'ranking', trafficPercent: 100, allocation: { start: 0, end: 10_000 } });
        expect(r.headers.etag).toBe('"1"');
        expect(r.headers.location).toBe('/v1/experiments/ranker-v2');
        expect((await call('GET', '/v1/experiments/ranker-v2', 'viewer')).json()).toEqual(e);
      });

      it('defaults the layer to the key and the traffic to 100%', async () => {
        const { layer: _layer, trafficPercent: _t, ...rest } = definition();
        const r = await call('POST', '/v1/experiments', 'editor', rest);
        expect(r.statusCode).toBe(201);
        expect(r.json()).toMatchObject({ layer: 'ranker-v2', trafficPercent: 100, allocation: { start: 0, end: 10_000 } });
      });

      it('allocates the first free range of the layer from trafficPercent', async () => {
        await create({ key: 'a', trafficPercent: 30 });
        await act('a', 'start');
        const b = await create({ key: 'b', trafficPercent: 50 });
        expect(b.json().allocation).toEqual({ start: 3000, end: 8000 });
        const c = await create({ key: 'c', trafficPercent: 20 });
        expect(c.json().allocation).toEqual({ start: 8000, end: 10_000 });
      });

      it('answers 400 naming each invalid field, unknown fields included, and stores nothing', async () => {
        const r = await call('POST', '/v1/experiments', 'editor', {
          ...definition(),
          colour: 'blue',
          variants: [
            { key: 'control', weight: 50.001, params: {} },
            { key: 'Treatment!', weight: 50, params: {} },
          ],
        });
        expect(r.statusCode).toBe(400);
        expect(error(r).code).toBe('BUNRYU_VALIDATION');
        expect(fieldPaths(r)).toEqual(expect.arrayContaining(['variants.0.weight', 'variants.1.key']));
        expect(JSON.stringify(error(r).details)).toContain('colour');
        expect((await call('GET', '/v1/experiments', 'viewer')).json()).toEqual([]);
      });

      it('answers 400 for weights that do not sum to 100 and overrides naming no variant', async () => {
        const r = await create({
          variants: [
            { key: 'control', weight: 40, params: {} },
            { key: 'treatment', weight: 50, params: {} },
          ],
          overrides: { 'qa-user-1': 'treatment', 'qa-user-2': 'nope' },
        });
        expect(r.statusCode).toBe(400);
        expect(fieldPaths(r)).toEqual(expect.arrayContaining(['variants', 'overrides.qa-user-2']));
      });

      it('answers 400 for metrics missing from the catalogue', async () => {
        const r = await create({ metrics: { primary: 'revenue', secondary: ['latency_ms', 'dwel'], guardrails: ['error_rate', 'bounce'] } });
        expect(r.statusCode).toBe(400);
        expect(fieldPaths(r)).toEqual(['metrics.primary', 'metrics.secondary.1', 'metrics.guardrails.1']);
        // A correction the analysis does not know is refused at its field.
        const bad = await create({ analysis: { correction: 'bonferroni' } });
        expect(bad.statusCode).toBe(400);
        expect(fieldPaths(bad)).toEqual(['analysis.correction']);
      });

      it('answers 400 for a body that is not JSON and 413 over 1 MiB', async () => {
        const bad = await app.inject({ method: 'POST', url: '/v1/experiments', headers: { ...bearer('editor'), 'content-type': 'application/json' }, payload: '{"key":' });
        expect(bad.statusCode).toBe(400);
        expect(error(bad).code).toBe('BUNRYU_INVALID_JSON');
        const huge = await call('POST', '/v1/experiments', 'editor', { ...definition(), hypothesis: 'x'.repeat(1024 * 1024) });
        expect(huge.statusCode).toBe(413);
        expect(error(huge).code).toBe('BUNRYU_PAYLOAD_TOO_LARGE');
      });

      it('answers 409 for a key that exists', async () => {
        expect((await create()).statusCode).toBe(201);
        const again = await create({ name: 'another' });
        expect(again.statusCode).toBe(409);
        expect(error(again).code).toBe('BUNRYU_ALREADY_EXISTS');
      });

      it('answers 409 when the layer has no free range left', async () => {
        await create({ key: 'a', trafficPercent: 60 });
        await act('a', 'start');
        const r = await create({ key: 'b', trafficPercent: 50 });
        expect(r.statusCode).toBe(409);
        expect(error(r)).toMatchObject({ code: 'BUNRYU_LAYER_FULL', details: { layer: 'ranking', heldBy: [{ experiment: 'a' }] } });
      });
    });

    describe('auth', () => {
      it('answers 401 without a token or with an unknown one', async () => {
        const none = await call('GET', '/v1/experiments', null);
        expect(none.statusCode).toBe(401);
        expect(error(none).code).toBe('BUNRYU_UNAUTHORIZED');
        expect((await call('GET', '/v1/experiments', null, undefined, { authorization: 'Bearer nope-nope-nope' })).statusCode).toBe(401);
        expect((await call('GET', '/v1/config', null)).statusCode).toBe(401);
      });

      it('answers 403 to a role below the one the action needs', async () => {
        expect((await create()).statusCode).toBe(201);
        const cases: [TestRole, 'GET' | 'POST' | 'PUT', string, unknown][] = [
          ['viewer', 'POST', '/v1/experiments', definition({ key: 'x' })],
          ['viewer', 'POST', '/v1/experiments/ranker-v2/start', undefined],
          ['editor', 'POST', '/v1/experiments/ranker-v2/ramp', { weights: { control: 10, treatment: 90 } }],
          ['editor', 'POST', '/v1/experiments/ranker-v2/promote', { variant: 'treatment' }],
          ['editor', 'POST', '/v1/experiments/ranker-v2/rollback', undefined],
          ['releaser', 'PUT', '/v1/routes/other', { upstream: 'http://127.0.0.1:9/' }],
          ['releaser', 'PUT', '/v1/holdout', { percent: 5 }],
          ['viewer', 'PUT', '/v1/metrics/clicks', { type: 'mean', event: 'click' }],
        ];
        for (const [role, method, url, payload] of cases) {
          const r = await call(method, url, role, payload);
          expect({ role, url, status: r.statusCode, code: error(r).code }).toEqual({ role, url, status: 403, code: 'BUNRYU_FORBIDDEN' });
        }
        // None of them changed anything.
        expect((await call('GET', '/v1/experiments/ranker-v2', 'viewer')).json()).toMatchObject({ version: 1, status: 'draft' });
        expect((await call('GET', '/v1/routes', 'viewer')).json().map((r: { key: string }) => r.key)).toEqual(['recommend']);
      });

      it('lets each role do what it may, and records who did it', async () => {
        expect((await create()).statusCode).toBe(201);
        expect((await act('ranker-v2', 'start', 'editor')).statusCode).toBe(200);
        expect((await act('ranker-v2', 'ramp', 'releaser', { weights: { control: 90, treatment: 10 } })).statusCode).toBe(200);
        expect((await act('ranker-v2', 'promote', 'admin', { variant: 'treatment' })).statusCode).toBe(200);
        const history = (await call('GET', '/v1/experiments/ranker-v2/history', 'viewer')).json<{ action: string; actor: unknown }[]>();
        expect(history.map((h) => [h.action, h.actor])).toEqual([
          ['create', { role: 'editor', name: 'pm-ann' }],
          ['start', { role: 'editor', name: 'pm-ann' }],
          ['ramp', { role: 'releaser', name: 'releaser-1' }],
          ['promote', { role: 'admin', name: 'admin' }],
        ]);
        expect((await call('GET', '/v1/me', 'releaser')).json()).toEqual({ role: 'releaser', name: 'releaser-1' });
      });
    });

    describe('lifecycle', () => {
      it('goes draft → running ↔ paused → released, counting the version on every change', async () => {
        await create();
        const steps = [
          ['start', 'running'],
          ['pause', 'paused'],
          ['start', 'running'],
          ['promote', 'released'],
          ['archive', 'archived'],
        ] as const;
        let version = 1;
        for (const [action, status] of steps) {
          const r = await act('ranker-v2', action, 'admin', action === 'promote' ? { variant: 'treatment' } : undefined);
          expect(r.statusCode).toBe(200);
          version += 1;
          expect(r.json()).toMatchObject({ status, version });
          expect(r.headers.etag).toBe(`"${version}"`);
        }
        const e = (await call('GET', '/v1/experiments/ranker-v2')).json();
        expect(e).toMatchObject({ releasedVariant: 'treatment', status: 'archived' });
        expect(typeof e.startedAt).toBe('string');
        expect(typeof e.releasedAt).toBe('string');
      });

      it('rolls back a running experiment and a released one', async () => {
        await create({ key: 'a' });
        await act('a', 'start');
        expect((await act('a', 'rollback')).json().status).toBe('rolled_back');
        await create({ key: 'b', layer: 'other', variants: [{ key: 'control', weight: 50, params: { x: 1 } }, { key: 'treatment', weight: 50, params: { x: 2 } }] });
        await act('b', 'start');
        await act('b', 'promote', 'admin', { variant: 'control' });
        expect((await act('b', 'rollback')).json().status).toBe('rolled_back');
      });

      it('answers 409 to a status change the current status does not allow', async () => {
        await create();
        for (const action of ['pause', 'rollback']) {
          const r = await act('ranker-v2', action);
          expect(r.statusCode).toBe(409);
          expect(error(r)).toMatchObject({ code: 'BUNRYU_INVALID_TRANSITION', details: { status: 'draft' } });
        }
        expect((await act('ranker-v2', 'promote', 'admin', { variant: 'control' })).statusCode).toBe(409);
        await act('ranker-v2', 'start');
        expect(error(await act('ranker-v2', 'archive')).code).toBe('BUNRYU_INVALID_TRANSITION');
        await act('ranker-v2', 'rollback');
        expect((await act('ranker-v2', 'start')).statusCode).toBe(409);
        expect((await act('ranker-v2', 'ramp', 'admin', { weights: { control: 10, treatment: 90 } })).statusCode).toBe(409);
        expect((await act('ranker-v2', 'archive')).statusCode).toBe(200);
        expect((await act('ranker-v2', 'archive')).statusCode).toBe(409);
      });

      it('answers 404 for an unknown experiment, route or metric', async () => {
        for (const [method, url] of [
          ['GET', '/v1/experiments/nope'],
          ['POST', '/v1/experiments/nope/start'],
          ['GET', '/v1/experiments/nope/history'],
          ['GET', '/v1/routes/nope'],
          ['GET', '/v1/metrics/nope'],
          ['GET', '/v1/holdout'],
        ] as const) {
          const r = await call(method, url);
          expect({ url, status: r.statusCode, code: error(r).code }).toEqual({ url, status: 404, code: 'BUNRYU_NOT_FOUND' });
        }
        const r = await call('PUT', '/v1/experiments/nope', 'editor', definition({ key: 'nope' }), { 'if-match': '"1"' });
        expect(r.statusCode).toBe(404);
      });

      it('refuses to start without the route (400 naming route)', async () => {
        await create({ route: 'missing' });
        const r = await act('ranker-v2', 'start');
        expect(r.statusCode).toBe(400);
        expect(fieldPaths(r)).toEqual(['route']);
      });

      it('refuses to start over a running experiment of the same layer (409 naming it)', async () => {
        await create({ key: 'a', trafficPercent: 60 });
        await create({ key: 'b', trafficPercent: 60 }); // only a draft holds the range yet: b overlaps it
        expect((await act('a', 'start')).statusCode).toBe(200);
        const r = await act('b', 'start');
        expect(r.statusCode).toBe(409);
        expect(error(r)).toMatchObject({ code: 'BUNRYU_LAYER_FULL', details: { experiment: 'a' } });
        expect((await call('GET', '/v1/experiments/b')).json().status).toBe('draft');
      });

      it('refuses to start an experiment that sets a parameter another layer sets on the route (409 naming both)', async () => {
        await create({ key: 'a', layer: 'ranking' });
        await create({ key: 'b', layer: 'blending', variants: [{ key: 'control', weight: 50, params: { blend: 0.1 } }, { key: 'treatment', weight: 50, params: { blend: 0.5, version: '3' } }] });
        await act('a', 'start');
        const r = await act('b', 'start');
        expect(r.statusCode).toBe(409);
        expect(error(r)).toMatchObject({ code: 'BUNRYU_PARAM_CONFLICT', details: { experiment: 'a', param: 'version' } });
        expect(error(r).message).toContain('a');
        expect(error(r).message).toContain('"version"');
        // Paused, `a` no longer competes for the parameter.
        await act('a', 'pause');
        expect((await act('b', 'start')).statusCode).toBe(200);
        const back = await act('a', 'start');
        expect(error(back)).toMatchObject({ code: 'BUNRYU_PARAM_CONFLICT', details: { experiment: 'b', param: 'version' } });
      });

      it('lets experiments of one layer share parameter keys (they never meet a unit together)', async () => {
        await create({ key: 'a', trafficPercent: 50 });
        await create({ key: 'b', trafficPercent: 50 });
        expect((await act('a', 'start')).statusCode).toBe(200);
        expect((await act('b', 'start')).statusCode).toBe(200);
      });

      it('accepts an action with an empty JSON body or {}, and rejects unknown fields', async () => {
        await create();
        const empty = await app.inject({ method: 'POST', url: '/v1/experiments/ranker-v2/start', headers: { ...bearer('editor'), 'content-type': 'application/json' }, payload: '' });
        expect(empty.statusCode).toBe(200);
        expect((await act('ranker-v2', 'pause', 'editor', {})).statusCode).toBe(200);
        const unknown = await act('ranker-v2', 'start', 'editor', { force: true });
        expect(unknown.statusCode).toBe(400);
      });
    });

    describe('ramp and promote', () => {
      beforeEach(async () => {
        await create({
          variants: [
            { key: 'control', weight: 80, params: { version: '1' } },
            { key: 'treatment', weight: 10, params: { version: '2' } },
            { key: 'blend', weight: 10, params: { version: '3' } },
          ],
        });
        await act('ranker-v2', 'start');
      });

      it('sets the named weights and keeps the others', async () => {
        const r = await act('ranker-v2', 'ramp', 'releaser', { weights: { control: 60, treatment: 30 } });
        expect(r.statusCode).toBe(200);
        expect(r.json().variants.map((v: { weight: number }) => v.weight)).toEqual([60, 30, 10]);
        // Each weight change starts a phase: the aggregator analyses units by the phase they came in.
        expect(Date.parse(r.json().weightsChangedAt)).toBeGreaterThan(Date.parse(r.json().startedAt) - 1);
        expect(r.json().phases).toEqual([
          { startedAt: r.json().startedAt, weights: { control: 80, treatment: 10, blend: 10 } },
          { startedAt: r.json().weightsChangedAt, weights: { control: 60, treatment: 30, blend: 10 } },
        ]);
        // The same weights again start no phase.
        const again = await act('ranker-v2', 'ramp', 'releaser', { weights: { control: 60 } });
        expect(again.json().phases).toHaveLength(2);
        const history = (await call('GET', '/v1/experiments/ranker-v2/history')).json();
        const last = history.findLast((h: { changed?: string[] }) => h.changed?.includes('variants'));
        expect(last).toMatchObject({ action: 'ramp', changed: ['phases', 'variants', 'weightsChangedAt'] });
        expect(last.before.variants[0].weight).toBe(80);
        expect(last.after.variants[0].weight).toBe(60);
      });

      it('answers 400 for an unknown variant or weights that no longer sum to 100', async () => {
        const unknown = await act('ranker-v2', 'ramp', 'releaser', { weights: { control: 50, nope: 50 } });
        expect(unknown.statusCode).toBe(400);
        expect(fieldPaths(unknown)).toEqual(['weights.nope']);
        const sum = await act('ranker-v2', 'ramp', 'releaser', { weights: { control: 50 } });
        expect(sum.statusCode).toBe(400);
        expect(fieldPaths(sum)).toEqual(['weights']);
        const decimals = await act('ranker-v2', 'ramp', 'releaser', { weights: { control: 79.999, treatment: 10.001 } });
        expect(decimals.statusCode).toBe(400);
        expect((await call('GET', '/v1/experiments/ranker-v2')).json().version).toBe(2);
      });

      it('promotes only an existing variant (400 naming variant)', async () => {
        const r = await act('ranker-v2', 'promote', 'releaser', { variant: 'nope' });
        expect(r.statusCode).toBe(400);
        expect(fieldPaths(r)).toEqual(['variant']);
        const ok = await act('ranker-v2', 'promote', 'releaser', { variant: 'blend' });
        expect(ok.json()).toMatchObject({ status: 'released', releasedVariant: 'blend' });
      });
    });

    describe('If-Match', () => {
      beforeEach(async () => {
        await create();
      });

      it('requires If-Match on PUT (428) and answers 412 to a stale one', async () => {
        const changed = definition({ name: 'renamed' });
        const none = await call('PUT', '/v1/experiments/ranker-v2', 'editor', changed);
        expect(none.statusCode).toBe(428);
        expect(error(none).code).toBe('BUNRYU_PRECONDITION_REQUIRED');
        const stale = await call('PUT', '/v1/experiments/ranker-v2', 'editor', changed, { 'if-match': '"7"' });
        expect(stale.statusCode).toBe(412);
        expect(error(stale)).toMatchObject({ code: 'BUNRYU_VERSION_MISMATCH', details: { version: 1 } });
        const ok = await call('PUT', '/v1/experiments/ranker-v2', 'editor', changed, { 'if-match': '"1"' });
        expect(ok.statusCode).toBe(200);
        expect(ok.json()).toMatchObject({ name: 'renamed', version: 2, status: 'draft' });
        expect(ok.headers.etag).toBe('"2"');
        const again = await call('PUT', '/v1/experiments/ranker-v2', 'editor', changed, { 'if-match': '"1"' });
        expect(again.statusCode).toBe(412);
      });

      it('refuses an edit that would reshuffle units once started (409 naming the field), and allows the rest', async () => {
        expect((await act('ranker-v2', 'start', 'editor')).statusCode).toBe(200);
        const weights = definition({
          variants: [
            { key: 'control', weight: 30, params: { version: '1' } },
            { key: 'treatment', weight: 70, params: { version: '2' } },
          ],
        });
        const reshuffle = await call('PUT', '/v1/experiments/ranker-v2', 'editor', weights, { 'if-match': '"2"' });
        expect(reshuffle.statusCode).toBe(409);
        expect(error(reshuffle)).toMatchObject({ code: 'BUNRYU_INVALID_TRANSITION', message: expect.stringMatching(/^variants\.0\.weight: /) });
        const salt = await call('PUT', '/v1/experiments/ranker-v2', 'editor', definition({ salt: 'x' }), { 'if-match': '"2"' });
        expect(error(salt).message).toMatch(/^salt: /);
        const renamed = await call('PUT', '/v1/experiments/ranker-v2', 'editor', definition({ name: 'renamed' }), { 'if-match': '"2"' });
        expect(renamed.statusCode).toBe(200);
        expect(renamed.json()).toMatchObject({ name: 'renamed', status: 'running', version: 3 });
      });

      it('accepts the version quoted, bare or weak', async () => {
        for (const [header, version] of [['"1"', 1], ['2', 2], ['W/"3"', 3], ['"9", "4"', 4], ['*', 5]] as const) {
          const r = await call('PUT', '/v1/experiments/ranker-v2', 'editor', definition({ name: `v${version}` }), { 'if-match': header });
          expect({ header, status: r.statusCode }).toEqual({ header, status: 200 });
        }
        expect((await call('PUT', '/v1/experiments/ranker-v2', 'editor', definition(), { 'if-match': 'garbage' })).statusCode).toBe(412);
      });

      it('answers 412 to a stale If-Match on actions, and applies a current one', async () => {
        const stale = await act('ranker-v2', 'start', 'editor', undefined, { 'if-match': '"2"' });
        expect(stale.statusCode).toBe(412);
        expect((await call('GET', '/v1/experiments/ranker-v2')).json().status).toBe('draft');
        expect((await act('ranker-v2', 'start', 'editor', undefined, { 'if-match': '"1"' })).statusCode).toBe(200);
        expect((await act('ranker-v2', 'ramp', 'releaser', { weights: { control: 10, treatment: 90 } }, { 'if-match': '"1"' })).statusCode).toBe(412);
        expect((await act('ranker-v2', 'promote', 'releaser', { variant: 'control' }, { 'if-match': '"1"' })).statusCode).toBe(412);
        expect((await act('ranker-v2', 'rollback', 'releaser', undefined, { 'if-match': '"2"' })).statusCode).toBe(200);
      });

      it('answers 304 to If-None-Match with the current version', async () => {
        const r = await call('GET', '/v1/experiments/ranker-v2', 'viewer', undefined, { 'if-none-match': '"1"' });
        expect(r.statusCode).toBe(304);
        expect(r.body).toBe('');
      });

      it('keeps the key of the URL (400 naming key)', async () => {
        const r = await call('PUT', '/v1/experiments/ranker-v2', 'editor', definition({ key: 'other' }), { 'if-match': '1' });
        expect(r.statusCode).toBe(400);
        expect(fieldPaths(r)).toEqual(['key']);
      });
    });

    describe('editing', () => {
      it('keeps the range when traffic and layer stay, and moves to a free one when they change', async () => {
        await create({ key: 'a', trafficPercent: 40 });
        await act('a', 'start');
        await create({ key: 'b', trafficPercent: 20 });
        expect((await call('GET', '/v1/experiments/b')).json().allocation).toEqual({ start: 4000, end: 6000 });
        const same = await call('PUT', '/v1/experiments/b', 'editor', definition({ key: 'b', trafficPercent: 20, name: 'x' }), { 'if-match': '1' });
        expect(same.json().allocation).toEqual({ start: 4000, end: 6000 });
        const wider = await call('PUT', '/v1/experiments/b', 'editor', definition({ key: 'b', trafficPercent: 60 }), { 'if-match': '2' });
        expect(wider.json()).toMatchObject({ trafficPercent: 60, allocation: { start: 4000, end: 10_000 } });
        const tooWide = await call('PUT', '/v1/experiments/b', 'editor', definition({ key: 'b', trafficPercent: 70 }), { 'if-match': '3' });
        expect(tooWide.statusCode).toBe(409);
        expect(error(tooWide).code).toBe('BUNRYU_LAYER_FULL');
      });

      it('takes an explicit allocation and checks it against the running ones', async () => {
        await create({ key: 'a', trafficPercent: 40 });
        await act('a', 'start');
        const clash = await create({ key: 'b', trafficPercent: undefined, allocation: { start: 3000, end: 5000 } });
        expect(clash.statusCode).toBe(409);
        expect(error(clash)).toMatchObject({ code: 'BUNRYU_LAYER_FULL', details: { experiment: 'a' } });
        const ok = await create({ key: 'b', trafficPercent: undefined, allocation: { start: 9000, end: 10_000 } });
        expect(ok.json()).toMatchObject({ trafficPercent: 10, allocation: { start: 9000, end: 10_000 } });
        const mismatch = await create({ key: 'c', trafficPercent: 30, allocation: { start: 4000, end: 5000 } });
        expect(fieldPaths(mismatch)).toEqual(['trafficPercent']);
      });

      it('re-validates a running experiment: a param clash introduced by an edit is a 409', async () => {
        await create({ key: 'a', layer: 'one', variants: [{ key: 'control', weight: 50, params: { x: 1 } }, { key: 'treatment', weight: 50, params: { x: 2 } }] });
        await create({ key: 'b', layer: 'two', variants: [{ key: 'control', weight: 50, params: { y: 1 } }, { key: 'treatment', weight: 50, params: { y: 2 } }] });
        await act('a', 'start');
        await act('b', 'start');
        const edit = definition({ key: 'b', layer: 'two', variants: [{ key: 'control', weight: 50, params: { y: 1 } }, { key: 'treatment', weight: 50, params: { x: 3 } }] });
        const r = await call('PUT', '/v1/experiments/b', 'editor', edit, { 'if-match': '2' });
        expect(error(r)).toMatchObject({ code: 'BUNRYU_PARAM_CONFLICT', details: { experiment: 'a', param: 'x' } });
        expect((await call('GET', '/v1/experiments/b')).json().version).toBe(2);
      });

      it('refuses to edit a finished experiment (409)', async () => {
        await create();
        await act('ranker-v2', 'start');
        await act('ranker-v2', 'rollback');
        const r = await call('PUT', '/v1/experiments/ranker-v2', 'editor', definition(), { 'if-match': '3' });
        expect(error(r).code).toBe('BUNRYU_INVALID_TRANSITION');
      });
    });

    describe('lists, routes, metrics, holdout and audit', () => {
      it('lists experiments by key, filtered by status and route (400 on an unknown status)', async () => {
        await create({ key: 'b', layer: 'l2' });
        await create({ key: 'a', layer: 'l1', route: 'other' });
        await act('b', 'start');
        expect((await call('GET', '/v1/experiments', 'viewer')).json().map((e: { key: string }) => e.key)).toEqual(['a', 'b']);
        expect((await call('GET', '/v1/experiments?status=running', 'viewer')).json().map((e: { key: string }) => e.key)).toEqual(['b']);
        expect((await call('GET', '/v1/experiments?route=other', 'viewer')).json().map((e: { key: string }) => e.key)).toEqual(['a']);
        const bad = await call('GET', '/v1/experiments?status=done', 'viewer');
        expect(bad.statusCode).toBe(400);
        expect(fieldPaths(bad)).toEqual(['status']);
      });

      it('creates (201) and replaces (200) routes, validating them', async () => {
        const created = await call('PUT', '/v1/routes/search', 'admin', { upstream: 'http://127.0.0.1:9/s' });
        expect(created.statusCode).toBe(201);
        expect(created.json()).toMatchObject({ key: 'search', path: '/', defaultParams: {}, timeoutMs: 1000 });
        const replaced = await call('PUT', '/v1/routes/search', 'admin', { upstream: 'http://127.0.0.1:9/s', timeoutMs: 200, fallback: { status: 200, body: { items: [] } } });
        expect(replaced.statusCode).toBe(200);
        expect((await call('GET', '/v1/routes', 'viewer')).json().map((r: { key: string }) => r.key)).toEqual(['recommend', 'search']);
        const bad = await call('PUT', '/v1/routes/Bad%20Key', 'admin', { upstream: 'ftp://x', extra: 1 });
        expect(bad.statusCode).toBe(400);
        expect(fieldPaths(bad)).toEqual(['route', 'upstream', '(body)']);
        expect(error(bad).message).toMatch(/^route: /);
      });

      it('keeps a metric catalogue with the built-ins, which cannot be redefined', async () => {
        const ratio = await call('PUT', '/v1/metrics/click_through', 'editor', { type: 'ratio', numerator: { event: 'click' }, denominator: { event: 'impression' } });
        expect(ratio.statusCode).toBe(201);
        const catalogue = (await call('GET', '/v1/metrics', 'viewer')).json();
        expect(Object.keys(catalogue).sort()).toEqual(['click_through', 'ctr', 'error_rate', 'latency_ms']);
        expect(catalogue.error_rate).toMatchObject({ builtIn: true, type: 'proportion' });
        expect(catalogue.ctr).toEqual({ key: 'ctr', type: 'proportion', event: 'click', builtIn: false });
        expect((await call('PUT', '/v1/metrics/error_rate', 'editor', { type: 'mean', event: 'x' })).statusCode).toBe(409);
        const bad = await call('PUT', '/v1/metrics/dwell', 'editor', { type: 'mean', event: 'Dwell Time' });
        expect(bad.statusCode).toBe(400);
        expect(fieldPaths(bad)).toEqual(['event']);
      });

      it('sets the holdout (admin) and audits every kind of change', async () => {
        const r = await call('PUT', '/v1/holdout', 'admin', { percent: 5, salt: 'h1' });
        expect(r.json()).toEqual({ percent: 5, salt: 'h1' });
        expect((await call('GET', '/v1/holdout', 'viewer')).json()).toEqual({ percent: 5, salt: 'h1' });
        expect((await call('PUT', '/v1/holdout', 'admin', { percent: 101 })).statusCode).toBe(400);
        const log = (await call('GET', '/v1/audit', 'viewer')).json<{ subject: string; action: string; actor: { name: string } }[]>();
        expect(log.map((e) => [e.subject, e.action, e.actor.name])).toEqual([
          ['route:recommend', 'create', 'admin'],
          ['metric:ctr', 'create', 'pm-ann'],
          ['holdout', 'set', 'admin'],
        ]);
        expect((await call('GET', '/v1/audit?limit=1&subject=holdout', 'viewer')).json()).toHaveLength(1);
        expect((await call('GET', '/v1/audit?limit=0', 'viewer')).statusCode).toBe(400);
      });

      it('answers 400 naming a query parameter the endpoint does not take, instead of ignoring it', async () => {
        const bad = await call('GET', '/v1/audit?before=notadate&limit=5', 'viewer');
        expect(bad.statusCode).toBe(400);
        expect(fieldPaths(bad)).toEqual(['before']);
        expect(bad.json<{ error: { message: string } }>().error.message).toMatch(/^before: .*takes subject, limit/);
        expect(fieldPaths(await call('GET', '/v1/experiments?stauts=running', 'viewer'))).toEqual(['stauts']);
      });
    });
  });
});
