import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { assign, type ConfigSnapshot, type Experiment } from '@bunryu/core';
import { Autopilot } from '../src/autopilot/autopilot.ts';
import { AggregatorResults } from '../src/autopilot/results-source.ts';
import { ExperimentManager } from '../src/experiments/experiment-manager.ts';
import type { RouteHistory } from '../src/releases/route-history.ts';
import type { ExperimentStore } from '../src/store/experiment-store.ts';
import { buildApp } from '../src/app.ts';
import { fakeAggregator, results } from './support/fake-aggregator.ts';
import { bearer, definition, seed, storeFixture, testConfig, type StoreFixture, type StoreKind, type TestRole } from './support/service.ts';

const REDIS_URL = process.env.REDIS_URL;
const kinds: StoreKind[] = REDIS_URL || process.env.BUNRYU_REQUIRE_INTEGRATION ? ['file', 'redis'] : ['file'];

/** Steps that need no time and few units, so the autopilot walks the release in a few ticks. */
const quickPlan = {
  steps: [
    { weights: { control: 90, treatment: 10 }, minMinutes: 0, minUnits: 100 },
    { weights: { control: 50, treatment: 50 }, minMinutes: 0, minUnits: 100 },
  ],
  guardrails: [{ metric: 'error_rate', harm: 'increase' as const, margin: 0 }],
};

const UNITS = Array.from({ length: 300 }, (_, i) => `unit-${i}`);

describe.each(kinds)('releases on the %s store', (kind) => {
  let fixture: StoreFixture;
  let store: ExperimentStore;
  let app: FastifyInstance;
  let aggregator: Awaited<ReturnType<typeof fakeAggregator>>;

  beforeEach(async () => {
    fixture = await storeFixture(kind, REDIS_URL);
    store = await fixture.open();
    aggregator = await fakeAggregator();
    app = await buildApp(testConfig(), { store, close: () => store.close() });
    await seed(app); // route recommend with defaultParams {version: '1'}, metric ctr
  });
  afterEach(async () => {
    await app.close();
    await aggregator.close();
    await fixture.cleanup();
  });

  const call = (method: 'GET' | 'POST' | 'PUT', url: string, role: TestRole | null, payload?: unknown) =>
    app.inject({ method, url, headers: role ? bearer(role) : {}, ...(payload === undefined ? {} : { payload: payload as object }) });
  const release = (payload: unknown, role: TestRole | null = 'releaser') => call('POST', '/v1/releases', role, payload);
  const error = (r: LightMyRequestResponse) => r.json<{ error: { code: string; message: string; details?: { fields?: { path: string }[] } & Record<string, unknown> } }>().error;
  const fieldPaths = (r: LightMyRequestResponse) => (error(r).details?.fields ?? []).map((f) => f.path);
  const config = async () => (await call('GET', '/v1/config', 'viewer')).json<ConfigSnapshot>();
  const route = async () => (await call('GET', '/v1/routes/recommend', 'viewer')).json<{ defaultParams: Record<string, unknown>; updatedAt: string }>();
  const experiments = async () => (await call('GET', '/v1/experiments', 'viewer')).json<Experiment[]>();
  const autopilot = () =>
    new Autopilot({ manager: new ExperimentManager(store), results: new AggregatorResults({ url: aggregator.url }), logger: { info() {}, warn() {}, error() {} } });
  /** The params every unit gets from the published config, as a gateway computes them. */
  const servedVersions = (snapshot: ConfigSnapshot) => new Set(UNITS.map((u) => assign(snapshot, 'recommend', u).params.version));

  it('creates and starts a guarded rollout of the params against the route as it is: 201 running, with the plan', async () => {
    const r = await release({ route: 'recommend', params: { version: 'v3' } });
    expect(r.statusCode, r.body).toBe(201);
    const e = r.json<Experiment>();
    expect(e).toMatchObject({
      key: 'recommend-release-v3',
      status: 'running',
      route: 'recommend',
      layer: 'release.recommend',
      trafficPercent: 100,
      variants: [
        { key: 'control', weight: 95, params: {} },
        { key: 'treatment', weight: 5, params: { version: 'v3' } },
      ],
      metrics: { guardrails: ['error_rate', 'latency_ms'] },
      rolloutState: { step: 0, autopilot: 'active' },
      release: { baseline: { version: '1' } },
    });
    expect(e.rollout!.steps.map((s) => s.weights.treatment)).toEqual([5, 25, 50]);
    expect(r.headers.location).toBe('/v1/experiments/recommend-release-v3');
    // One change, one audit entry: there never was a draft.
    const history = (await call('GET', `/v1/experiments/${e.key}/history`, 'viewer')).json<{ action: string; before: unknown }[]>();
    expect(history.map((h) => [h.action, h.before])).toEqual([['release', null]]);
    // Control serves the route's default, treatment the new version.
    const snapshot = await config();
    expect(servedVersions(snapshot)).toEqual(new Set(['1', 'v3']));
  });

  it('takes the primary metric from the route\'s last experiment, a name, a key and a plan', async () => {
    await call('POST', '/v1/experiments', 'editor', definition());
    await call('POST', '/v1/experiments/ranker-v2/start', 'editor');
    await call('POST', '/v1/experiments/ranker-v2/rollback', 'releaser');
    const r = await release({ route: 'recommend', params: { version: 'v3' }, plan: quickPlan, name: 'Ranker v3', key: 'ranker-v3' });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json()).toMatchObject({ key: 'ranker-v3', name: 'Ranker v3', metrics: { primary: 'ctr', guardrails: ['error_rate'] }, variants: [{ weight: 90 }, { weight: 10 }] });
    // The same version released again after a rollback gets the next free key.
    await call('POST', '/v1/experiments/ranker-v3/rollback', 'releaser');
    expect((await release({ route: 'recommend', params: { version: 'v3' } })).json().key).toBe('recommend-release-v3');
    await call('POST', '/v1/experiments/recommend-release-v3/rollback', 'releaser');
    expect((await release({ route: 'recommend', params: { version: 'v3' } })).json().key).toBe('recommend-release-v3-2');
  });

  it.each([
    ['an unknown route', { route: 'nowhere', params: { version: 'v3' } }, 'route'],
    ['params that are not an object', { route: 'recommend', params: 'v3' }, 'params'],
    ['empty params', { route: 'recommend', params: {} }, 'params'],
    ['a plan naming another variant', { route: 'recommend', params: { version: 'v3' }, plan: { ...quickPlan, steps: [{ weights: { control: 50, b: 50 }, minMinutes: 0, minUnits: 1 }] } }, 'plan.steps.0.weights.b'],
    ['a plan that lowers the treatment', { route: 'recommend', params: { version: 'v3' }, plan: { ...quickPlan, steps: [...quickPlan.steps].reverse() } }, 'plan.steps.1.weights.treatment'],
    ['an unknown primary metric', { route: 'recommend', params: { version: 'v3' }, metrics: { primary: 'revenue' } }, 'metrics.primary'],
    ['an unknown field', { route: 'recommend', params: { version: 'v3' }, colour: 'blue' }, '(body)'],
  ])('answers 400 naming the field for %s, and stores nothing', async (_, payload, field) => {
    const before = (await store.load()).version;
    const r = await release(payload);
    expect(r.statusCode, r.body).toBe(400);
    expect(error(r).code).toBe('BUNRYU_VALIDATION');
    expect(fieldPaths(r)).toContain(field);
    expect(await experiments()).toEqual([]);
    expect((await store.load()).version).toBe(before);
  });

  it('answers 401 without a token and 403 for an editor', async () => {
    expect((await release({ route: 'recommend', params: { version: 'v3' } }, null)).statusCode).toBe(401);
    expect((await release({ route: 'recommend', params: { version: 'v3' } }, 'editor')).statusCode).toBe(403);
    expect((await release({ route: 'recommend', params: { version: 'v3' } }, 'admin')).statusCode).toBe(201);
  });

  it('answers 409 while the route has a release running, naming it, and leaves nothing behind', async () => {
    expect((await release({ route: 'recommend', params: { version: 'v3' } })).statusCode).toBe(201);
    const r = await release({ route: 'recommend', params: { version: 'v4' } });
    expect(r.statusCode).toBe(409);
    expect(error(r)).toMatchObject({ code: 'BUNRYU_ALREADY_EXISTS', details: { route: 'recommend', experiment: 'recommend-release-v3' } });
    expect(error(r).message).toContain('promote or roll it back');
    expect((await experiments()).map((e) => e.key)).toEqual(['recommend-release-v3']);
  });

  it('answers 409 when a running experiment of another layer sets the same parameter, and leaves no draft', async () => {
    await call('POST', '/v1/experiments', 'editor', definition());
    await call('POST', '/v1/experiments/ranker-v2/start', 'editor');
    const r = await release({ route: 'recommend', params: { version: 'v3' } });
    expect(r.statusCode).toBe(409);
    expect(error(r)).toMatchObject({ code: 'BUNRYU_PARAM_CONFLICT', details: { experiment: 'ranker-v2', param: 'version' } });
    expect((await experiments()).map((e) => e.key)).toEqual(['ranker-v2']);
  });

  it('promoted by the autopilot, makes the winner the route default in the same config version: every unit gets it without the experiment', async () => {
    const key = (await release({ route: 'recommend', params: { version: 'v3' }, plan: quickPlan, metrics: { primary: 'ctr' } })).json<Experiment>().key;
    aggregator.set(key, results({ ctrDiff: 0.02, ctrP: 0.001 }));
    const pilot = autopilot();
    for (let i = 0; i < 3; i++) await pilot.tick();
    const e = (await call('GET', `/v1/experiments/${key}`, 'viewer')).json<Experiment>();
    expect(e).toMatchObject({ status: 'released', releasedVariant: 'treatment', release: { baseline: { version: '1' }, promoted: { variant: 'treatment', params: { version: 'v3' }, before: { version: '1' } } } });
    expect((await route()).defaultParams).toEqual({ version: 'v3' });

    const snapshot = await config();
    expect(snapshot.routes.recommend!.defaultParams).toEqual({ version: 'v3' });
    expect(servedVersions(snapshot)).toEqual(new Set(['v3']));
    expect(UNITS.every((u) => assign(snapshot, 'recommend', u).assignments.length === 0)).toBe(true);
    // Without the experiment at all (archived, or a gateway that dropped it), the route alone serves v3.
    expect(servedVersions({ ...snapshot, experiments: [] })).toEqual(new Set(['v3']));

    // The route's change and the promotion are one config version, both the autopilot's, with its evidence.
    const audit = await store.audit();
    const promote = audit.find((a) => a.subject === `experiment:${key}` && a.action === 'promote')!;
    const routeChange = audit.find((a) => a.subject === 'route:recommend' && a.action === `release:${key}`)!;
    expect(routeChange.configVersion).toBe(promote.configVersion);
    expect(routeChange.actor).toEqual({ role: 'releaser', name: 'autopilot' });
    expect(routeChange.decision).toMatchObject({ reason: 'done-promote' });
    expect(routeChange.before).toMatchObject({ defaultParams: { version: '1' } });
  });

  it('rolled back while running, leaves the route exactly as it was', async () => {
    const before = await route();
    const key = (await release({ route: 'recommend', params: { version: 'v3' }, plan: quickPlan })).json<Experiment>().key;
    aggregator.set(key, results({ errors: [0.01, 0.2] }));
    await autopilot().tick();
    expect((await call('GET', `/v1/experiments/${key}`, 'viewer')).json()).toMatchObject({ status: 'rolled_back' });
    expect(await route()).toEqual(before);
    expect(servedVersions(await config())).toEqual(new Set(['1']));
    expect((await store.audit({ subject: 'route:recommend' })).map((a) => a.action)).toEqual(['create']);
  });

  it('rolled back after a person promoted it, gives the route back its defaults; a plain experiment never touches them', async () => {
    await call('PUT', '/v1/routes/recommend', 'admin', { upstream: 'http://127.0.0.1:9/predict', defaultParams: { version: '1', blend: 0.5 } });
    const key = (await release({ route: 'recommend', params: { version: 'v3', temperature: 2 } })).json<Experiment>().key;
    const promoted = await call('POST', `/v1/experiments/${key}/promote`, 'releaser', { variant: 'treatment' });
    expect(promoted.statusCode, promoted.body).toBe(200);
    expect((await route()).defaultParams).toEqual({ version: 'v3', blend: 0.5, temperature: 2 });
    const rolled = await call('POST', `/v1/experiments/${key}/rollback`, 'releaser');
    expect(rolled.statusCode, rolled.body).toBe(200);
    expect((await route()).defaultParams).toEqual({ version: '1', blend: 0.5 });
    expect(servedVersions(await config())).toEqual(new Set(['1']));

    // Promoting a plain experiment keeps SPEC §3's overlay: the route's defaults stay as they are.
    await call('POST', '/v1/experiments', 'editor', definition({ targeting: [] }));
    await call('POST', '/v1/experiments/ranker-v2/start', 'editor');
    await call('POST', '/v1/experiments/ranker-v2/promote', 'releaser', { variant: 'treatment' });
    expect((await route()).defaultParams).toEqual({ version: '1', blend: 0.5 });
    expect(servedVersions(await config())).toEqual(new Set(['2']));
  });

  it('keeps a route edit that lands between a promotion\'s read and its commit: the promotion reads again', async () => {
    const key = (await release({ route: 'recommend', params: { version: 'v3' } })).json<Experiment>().key;
    let raced = false;
    const racing: ExperimentStore = Object.assign(Object.create(store) as ExperimentStore, {
      async commit(change: Parameters<ExperimentStore['commit']>[0]) {
        if (!raced && change.routes?.length) {
          raced = true;
          const r = (await store.load()).routes.find((x) => x.key === 'recommend')!;
          await store.commit({ routes: [{ ...r, defaultParams: { ...r.defaultParams, blend: 0.3 } }], audit: [] });
        }
        return store.commit(change);
      },
    });
    await new ExperimentManager(racing).promote(key, 'treatment', undefined, { role: 'releaser', name: 'rel' });
    expect(raced).toBe(true);
    expect((await route()).defaultParams).toEqual({ version: 'v3', blend: 0.3 });
  });

  it('shows the route\'s history: what served after each change and who or what decided', async () => {
    const key = (await release({ route: 'recommend', params: { version: 'v3' }, plan: quickPlan, metrics: { primary: 'ctr' } })).json<Experiment>().key;
    aggregator.set(key, results({ ctrDiff: 0.02, ctrP: 0.001 }));
    const pilot = autopilot();
    for (let i = 0; i < 3; i++) await pilot.tick();

    const r = await call('GET', '/v1/routes/recommend/history', 'viewer');
    expect(r.statusCode, r.body).toBe(200);
    const h = r.json<RouteHistory>();
    expect(h.route).toBe('recommend');
    expect(h.entries.map((e) => [e.decidedBy, e.changes.map((c) => c.action)])).toEqual([
      ['person', ['create']],
      ['person', ['release']],
      ['autopilot', ['ramp']],
      ['autopilot', ['promote', `release:${key}`]],
    ]);
    const [created, started, ramped, done] = h.entries;
    expect(created!.serving).toEqual({ defaultParams: { version: '1' }, released: [], running: [] });
    expect(started!.actor).toEqual({ role: 'releaser', name: 'releaser-1' });
    expect(started!.serving.running).toEqual([{ experiment: key, variants: [{ key: 'control', weight: 90, params: {} }, { key: 'treatment', weight: 10, params: { version: 'v3' } }] }]);
    expect(ramped!.decision).toMatchObject({ reason: 'advance' });
    expect(done!.decision).toMatchObject({ reason: 'done-promote' });
    expect(done!.serving).toMatchObject({ defaultParams: { version: 'v3' }, running: [] });
    expect(done!.changes[1]!.summary).toContain('defaults became {"version":"v3"}');

    expect((await call('GET', '/v1/routes/nowhere/history', 'viewer')).statusCode).toBe(404);
    expect((await call('GET', '/v1/routes/recommend/history', null)).statusCode).toBe(401);
  });
});
