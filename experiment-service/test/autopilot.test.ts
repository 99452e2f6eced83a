import type { RolloutResults } from '@bunryu/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { ExperimentManager } from '../src/experiments/experiment-manager.ts';
import { Autopilot, type AutopilotEvent } from '../src/autopilot/autopilot.ts';
import { AggregatorResults } from '../src/autopilot/results-source.ts';
import { buildApp } from '../src/app.ts';
import type { ExperimentStore } from '../src/store/experiment-store.ts';
import { fakeAggregator, results } from './support/fake-aggregator.ts';
import { bearer, definition, seed, storeFixture, testConfig, type StoreFixture, type StoreKind } from './support/service.ts';

const REDIS_URL = process.env.REDIS_URL;
const kinds: StoreKind[] = REDIS_URL || process.env.BUNRYU_REQUIRE_INTEGRATION ? ['file', 'redis'] : ['file'];

/** A plan whose steps need no time and few units, so a test can walk it in a few ticks. */
const quickPlan = {
  steps: [
    { weights: { control: 95, treatment: 5 }, minMinutes: 0, minUnits: 100 },
    { weights: { control: 75, treatment: 25 }, minMinutes: 0, minUnits: 100 },
    { weights: { control: 50, treatment: 50 }, minMinutes: 0, minUnits: 100 },
  ],
  guardrails: [
    { metric: 'error_rate', harm: 'increase' as const, margin: 0 },
    { metric: 'latency_ms', harm: 'increase' as const, margin: 0.05 },
  ],
};

describe.each(kinds)('the release autopilot on the %s store', (kind) => {
  let fixture: StoreFixture;
  let store: ExperimentStore;
  let app: FastifyInstance;
  let aggregator: Awaited<ReturnType<typeof fakeAggregator>>;
  let manager: ExperimentManager;
  const events: AutopilotEvent[] = [];
  const autopilot = (m = manager) =>
    new Autopilot({ manager: m, results: new AggregatorResults({ url: aggregator.url }), logger: { info() {}, warn() {}, error() {} }, webhook: async (e) => void events.push(e) });

  beforeEach(async () => {
    events.length = 0;
    fixture = await storeFixture(kind, REDIS_URL);
    store = await fixture.open();
    aggregator = await fakeAggregator();
    app = await buildApp(testConfig(), { store, close: () => store.close() });
    manager = new ExperimentManager(store);
    await seed(app);
  });
  afterEach(async () => {
    await app.close();
    await aggregator.close();
    await fixture.cleanup();
  });

  async function startRollout(plan: object = quickPlan) {
    const created = await app.inject({ method: 'POST', url: '/v1/experiments', headers: bearer('editor'), payload: definition({ rollout: plan as never }) });
    expect(created.statusCode, created.body).toBe(201);
    const started = await app.inject({ method: 'POST', url: '/v1/experiments/ranker-v2/start', headers: bearer('editor') });
    expect(started.statusCode, started.body).toBe(200);
    return started.json();
  }
  const get = async () => (await app.inject({ method: 'GET', url: '/v1/experiments/ranker-v2', headers: bearer('viewer') })).json();
  const autopilotEntries = async () =>
    (await app.inject({ method: 'GET', url: '/v1/experiments/ranker-v2/history', headers: bearer('viewer') })).json().filter((h: { actor: { name: string } }) => h.actor.name === 'autopilot');

  it('refuses a plan that does not fit the variants, naming the field, and stores nothing', async () => {
    const bad = { ...quickPlan, steps: [{ weights: { control: 90, treatment: 5 }, minMinutes: 0, minUnits: 1 }] };
    const r = await app.inject({ method: 'POST', url: '/v1/experiments', headers: bearer('editor'), payload: definition({ rollout: bad as never }) });
    expect(r.statusCode).toBe(400);
    expect(JSON.stringify(r.json().error.details)).toContain('rollout.steps.0.weights');
    expect((await app.inject({ method: 'GET', url: '/v1/experiments/ranker-v2', headers: bearer('viewer') })).statusCode).toBe(404);
  });

  it("starts at the plan's first step with the autopilot driving, and shows the plan", async () => {
    const e = await startRollout();
    expect(e.variants.map((v: { weight: number }) => v.weight)).toEqual([95, 5]);
    expect(e.rolloutState).toMatchObject({ step: 0, autopilot: 'active' });
    const view = await app.inject({ method: 'GET', url: '/v1/experiments/ranker-v2/rollout', headers: bearer('viewer') });
    expect(view.statusCode).toBe(200);
    expect(view.json()).toMatchObject({ experiment: 'ranker-v2', status: 'running', state: { step: 0 }, currentWeights: { control: 95, treatment: 5 }, decisions: [] });
  });

  it('rolls back a harmful treatment on the first serving tick, with the evidence in the audit log and the config', async () => {
    await startRollout();
    aggregator.set('ranker-v2', results({ n: [2000, 200], errors: [0.01, 0.25] }));
    await autopilot().tick();
    expect((await get()).status).toBe('rolled_back');
    const [entry] = await autopilotEntries();
    expect(entry).toMatchObject({ action: 'rollback', actor: { role: 'releaser', name: 'autopilot' }, decision: { reason: 'harm' } });
    expect(entry.decision.evidence.guardrails[0]).toMatchObject({ metric: 'error_rate', verdict: 'harmed' });
    const config = (await app.inject({ method: 'GET', url: '/v1/config', headers: bearer('viewer') })).json();
    // What gateways get: the experiment no longer assigns anyone.
    expect(config.experiments.filter((x: { key: string; status: string }) => x.key === 'ranker-v2' && x.status === 'running')).toEqual([]);
    expect(events.map((e) => [e.decision.action, e.applied])).toEqual([['rollback', true]]);
  });

  it('holds below minUnitsForDecision however bad it looks', async () => {
    await startRollout();
    aggregator.set('ranker-v2', results({ n: [2000, 40], errors: [0.01, 0.9] }));
    const pilot = autopilot();
    await pilot.tick();
    await pilot.tick();
    expect((await get()).status).toBe('running');
    expect(pilot.evaluation('ranker-v2')?.lastDecision.decision.reason).toBe('min-units-for-decision');
    // The first look reads every metric; the next ones only the serving guardrails, until a minute has passed.
    expect(aggregator.asked).toEqual(['/v1/results/ranker-v2', '/v1/results/ranker-v2?metrics=error_rate%2Clatency_ms']);
  });

  it('holds on an answer that is not results, and reads the aggregator\'s nulls as figures it could not compute', async () => {
    await startRollout();
    // A harmful treatment, but the answer's shape is wrong (another version, a proxy's page): no action.
    const harmful = results({ errors: [0.01, 0.5] });
    aggregator.set('ranker-v2', { ...harmful, variants: undefined } as unknown as RolloutResults);
    const pilot = autopilot();
    await pilot.tick();
    expect((await get()).status).toBe('running');
    expect(pilot.evaluation('ranker-v2')).toBeUndefined();
    // The aggregator's null (no variance yet) is not a number to act on: the autopilot holds.
    const nulls = { ...harmful, metrics: harmful.metrics.map((m) => ({ ...m, variants: m.variants.map((v) => ({ ...v, variance: null })) })) } as unknown as RolloutResults;
    aggregator.set('ranker-v2', nulls);
    await pilot.tick();
    expect((await get()).status).toBe('running');
    // A well-formed harmful answer is acted on.
    aggregator.set('ranker-v2', harmful);
    await pilot.tick();
    await pilot.tick();
    expect((await get()).status).toBe('rolled_back');
  });

  it('walks a healthy rollout through every step and promotes the winner', async () => {
    await startRollout();
    aggregator.set('ranker-v2', results({ ctrDiff: 0.02, ctrP: 0.001 }));
    const pilot = autopilot();
    for (let i = 0; i < 4; i++) await pilot.tick();
    const e = await get();
    expect(e).toMatchObject({ status: 'released', releasedVariant: 'treatment', rolloutState: { step: 2 } });
    expect((await autopilotEntries()).map((h: { action: string }) => h.action)).toEqual(['ramp', 'ramp', 'promote']);
  });

  it('never acts twice when two replicas decide at once', async () => {
    await startRollout();
    aggregator.set('ranker-v2', results({ n: [2000, 200], errors: [0.01, 0.25] }));
    // Replicas share Redis; the embedded file store has one process, so there the two loops share it.
    const other = kind === 'redis' ? new ExperimentManager(await fixture.open()) : manager;
    await Promise.all([autopilot().tick(), autopilot(other).tick()]);
    expect((await autopilotEntries()).map((h: { action: string }) => h.action)).toEqual(['rollback']);
    expect(events.filter((e) => e.applied)).toHaveLength(1);
  });

  it('stops acting once a person takes over, and acts again once handed back', async () => {
    await startRollout();
    const paused = await app.inject({ method: 'POST', url: '/v1/experiments/ranker-v2/rollout/pause', headers: bearer('releaser') });
    expect(paused.json().rolloutState.autopilot).toBe('paused');
    aggregator.set('ranker-v2', results({ n: [2000, 200], errors: [0.01, 0.25] }));
    await autopilot().tick();
    expect((await get()).status).toBe('running');
    await app.inject({ method: 'POST', url: '/v1/experiments/ranker-v2/rollout/resume', headers: bearer('releaser') });
    await autopilot().tick();
    expect((await get()).status).toBe('rolled_back');
  });

  it("takes a person's ramp as taking over, and hands back only at a step of the plan", async () => {
    await startRollout();
    const r = await app.inject({ method: 'POST', url: '/v1/experiments/ranker-v2/ramp', headers: bearer('releaser'), payload: { weights: { control: 80, treatment: 20 } } });
    expect(r.json().rolloutState.autopilot).toBe('paused');
    const refused = await app.inject({ method: 'POST', url: '/v1/experiments/ranker-v2/rollout/resume', headers: bearer('releaser') });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.message).toContain('match no step');
    await app.inject({ method: 'POST', url: '/v1/experiments/ranker-v2/ramp', headers: bearer('releaser'), payload: { weights: { control: 75, treatment: 25 } } });
    const resumed = await app.inject({ method: 'POST', url: '/v1/experiments/ranker-v2/rollout/resume', headers: bearer('releaser') });
    expect(resumed.json().rolloutState).toMatchObject({ step: 1, autopilot: 'active' });
  });

  it('lets a running plan change only the steps ahead', async () => {
    const e = await startRollout();
    const later = structuredClone(quickPlan);
    later.steps[2]!.weights = { control: 40, treatment: 60 };
    const body = { ...definition({ rollout: later as never }), variants: e.variants.map((v: object) => v) };
    const ok = await app.inject({ method: 'PUT', url: '/v1/experiments/ranker-v2', headers: { ...bearer('editor'), 'if-match': String(e.version) }, payload: body });
    expect(ok.statusCode, ok.body).toBe(200);
    const now = structuredClone(later);
    now.steps[0]!.weights = { control: 90, treatment: 10 };
    const refused = await app.inject({ method: 'PUT', url: '/v1/experiments/ranker-v2', headers: { ...bearer('editor'), 'if-match': String(ok.json().version) }, payload: { ...body, rollout: now } });
    expect(refused.statusCode).toBe(400);
    expect(JSON.stringify(refused.json().error.details)).toContain('rollout.steps.0.weights');
  });
});
