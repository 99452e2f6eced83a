/**
 * The whole product across processes (issue #7): define a route and an experiment, drive
 * traffic through the gateway to the model-server, send behaviour events, read the results from
 * the aggregator, promote, roll back — on the embedded defaults and on real Redis + Kafka.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proportionTest } from '@bunryu/core';
import { integrationServer } from '@bunryu/platform/testing';
import { adminClient, startStack, waitFor, type Stack } from './support/stack.ts';

const redis = await integrationServer('REDIS_URL', 'redis://127.0.0.1:6379');
const kafka = await integrationServer('KAFKA_BROKERS', '127.0.0.1:9092');
const run = randomUUID().slice(0, 8);

// One trained model directory for both stacks: the model-server trains the demo models into it
// at its first start.
const modelDir = mkdtempSync(join(tmpdir(), 'bunryu-e2e-models-'));
afterAll(() => rmSync(modelDir, { recursive: true, force: true }));

const modes: [string, Record<string, string> | undefined][] = [
  ['embedded defaults', {}],
  [
    'Redis + Kafka',
    redis.url && kafka.url
      ? {
          REDIS_URL: redis.url,
          REDIS_PREFIX: `bunryu-e2e-${run}:`,
          KAFKA_BROKERS: kafka.url,
          BUNRYU_EVENTS_TOPIC: `bunryu.events.e2e-${run}`,
          AGGREGATOR_CONSUMER_GROUP: `bunryu-e2e-${run}`,
        }
      : undefined,
  ],
];

const instance = (i: number) => ({ user_affinity: (i % 7) / 7 - 0.5, item_popularity: (i % 5) / 5, recency: i % 30, price: 10 + (i % 20), position: 1 + (i % 10) });

describe.each(modes)('end to end on %s', (mode, env) => {
  let stack: Stack;
  let admin: ReturnType<typeof adminClient>;
  const id = `${run}-${mode.startsWith('embedded') ? 'e' : 'r'}`;
  const route = `rec-${id}`;
  const experiment = `ranker-${id}`;
  const units = Array.from({ length: 300 }, (_, i) => `e2e-${id}-${i}`);
  const variantOf = new Map<string, string>();

  beforeAll(async () => {
    if (!env) return;
    stack = await startStack(env, modelDir);
    admin = adminClient(stack.url['experiment-service'], stack.token);
  }, 240_000);
  afterAll(async () => {
    await stack?.close();
  });

  it.skipIf(!env)('defines a route, metrics and an experiment, and starts it', async () => {
    // PUT answers 201 when it creates, 200 when it replaces.
    expect([200, 201]).toContain((await admin('PUT', `/v1/routes/${route}`, {
      upstream: stack.url['model-server'],
      path: '/v1/models/recommend',
      defaultParams: { model: 'recommend', version: 'v1' },
      timeoutMs: 2000,
    })).status);
    expect([200, 201]).toContain((await admin('PUT', '/v1/metrics/ctr', { type: 'proportion', event: 'click' })).status);
    const created = await admin<{ status: string; allocation: unknown }>('POST', '/v1/experiments', {
      key: experiment,
      route,
      variants: [
        { key: 'control', weight: 50, params: { version: 'v1' } },
        { key: 'treatment', weight: 50, params: { version: 'v2' } },
      ],
      metrics: { primary: 'ctr', guardrails: ['error_rate', 'latency_ms'] },
    });
    expect(created.status).toBe(201);
    expect(created.body.status).toBe('draft');
    expect((await admin('POST', `/v1/experiments/${experiment}/start`)).status).toBe(200);
  });

  it.skipIf(!env)('forwards through the gateway to the model version the variant names', async () => {
    // The gateway learns of the start through the config stream.
    await waitFor('the gateway to assign the experiment', async () => {
      const res = await fetch(`${stack.url.gateway}/v1/assign`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ unitId: 'probe', route, attributes: {}, track: false }),
      });
      return ((await res.json()) as { assignments: unknown[] }).assignments.length === 1;
    });
    for (const [i, unitId] of units.entries()) {
      const res = await fetch(`${stack.url.gateway}/v1/routes/${route}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-unit-id': unitId },
        body: JSON.stringify({ instances: [instance(i)] }),
      });
      expect(res.status).toBe(200);
      const assignment = res.headers.get('x-ab-assignments') ?? '';
      const variant = assignment.split('=')[1]!;
      expect(['control', 'treatment']).toContain(variant);
      const body = (await res.json()) as { version: string; predictions: number[] };
      // The model-server picked the version from the A/B parameters the gateway forwarded.
      expect(body.version).toBe(variant === 'control' ? 'v1' : 'v2');
      expect(body.predictions).toHaveLength(1);
      variantOf.set(unitId, variant);
    }
    expect(new Set(variantOf.values()).size).toBe(2);
  }, 120_000);

  it.skipIf(!env)('counts exposures and events in the aggregator, with statistics equal to an independent computation', async () => {
    // Planted effect: a third of control units click, half of treatment units click.
    const clickers = new Set(units.filter((u, i) => (variantOf.get(u) === 'control' ? i % 3 === 0 : i % 2 === 0)));
    const events = units.flatMap((unitId) => [
      { type: 'impression', unitId, route },
      ...(clickers.has(unitId) ? [{ type: 'click', unitId, route }, { type: 'click', unitId, route }] : []),
    ]);
    for (let i = 0; i < events.length; i += 500) {
      const res = await fetch(`${stack.url.gateway}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events: events.slice(i, i + 500) }),
      });
      expect(res.status).toBe(202);
    }

    const expected = (v: string) => {
      const members = units.filter((u) => variantOf.get(u) === v);
      return { n: members.length, conversions: members.filter((u) => clickers.has(u)).length };
    };
    const control = expected('control');
    const treatment = expected('treatment');

    type Results = {
      variants: { key: string; units: number; exposures: number }[];
      metrics: { metric: string; variants: { key: string; units: number; mean: number }[]; comparisons: { variant: string; diff: number; pValue: number; ci95: [number, number] }[] }[];
    };
    const results = await waitFor('the aggregator to count every unit and click', async () => {
      const r = await fetch(`${stack.url.aggregator}/v1/results/${experiment}`, { headers: { authorization: `Bearer ${stack.token}` } });
      if (r.status !== 200) return undefined;
      const body = (await r.json()) as Results;
      const ctr = body.metrics.find((m) => m.metric === 'ctr');
      const units = body.variants.reduce((n, v) => n + v.units, 0);
      const clicked = ctr?.variants.reduce((n, v) => n + Math.round(v.mean * v.units), 0);
      return units === control.n + treatment.n && clicked === control.conversions + treatment.conversions ? body : undefined;
    }, 60_000, 500);

    expect(results.variants.find((v) => v.key === 'control')).toMatchObject({ units: control.n, exposures: control.n });
    expect(results.variants.find((v) => v.key === 'treatment')).toMatchObject({ units: treatment.n, exposures: treatment.n });
    const ctr = results.metrics.find((m) => m.metric === 'ctr')!;
    expect(ctr.variants.find((v) => v.key === 'control')!.mean).toBeCloseTo(control.conversions / control.n, 12);
    const independent = proportionTest(control, treatment);
    const comparison = ctr.comparisons.find((c) => c.variant === 'treatment')!;
    expect(comparison.diff).toBeCloseTo(independent.diff, 12);
    expect(comparison.pValue).toBeCloseTo(independent.pValue, 10);
    expect(comparison.ci95[0]).toBeCloseTo(independent.ci95[0], 10);
    // error_rate and latency_ms guardrails are present.
    expect(results.metrics.map((m) => m.metric)).toEqual(expect.arrayContaining(['ctr', 'error_rate', 'latency_ms']));
  }, 90_000);

  it.skipIf(!env)('promotes the treatment to all traffic, then rolls back at once', async () => {
    const assignFor = async (unitId: string) => {
      const res = await fetch(`${stack.url.gateway}/v1/assign`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ unitId, route, attributes: {}, track: false }),
      });
      return (await res.json()) as { assignments: unknown[]; params: { version?: string } };
    };
    // A control unit before promotion gets v1.
    const controlUnit = units.find((u) => variantOf.get(u) === 'control')!;
    expect((await assignFor(controlUnit)).params.version).toBe('v1');

    expect((await admin('POST', `/v1/experiments/${experiment}/promote`, { variant: 'treatment' })).status).toBe(200);
    await waitFor('promotion to reach the gateway', async () => {
      const a = await assignFor(controlUnit);
      return a.assignments.length === 0 && a.params.version === 'v2';
    }, 10_000, 100);

    expect((await admin('POST', `/v1/experiments/${experiment}/rollback`)).status).toBe(200);
    await waitFor('rollback to reach the gateway', async () => {
      const a = await assignFor(controlUnit);
      return a.assignments.length === 0 && a.params.version === 'v1';
    }, 10_000, 100);

    const history = await admin<unknown>('GET', `/v1/experiments/${experiment}/history`);
    const text = JSON.stringify(history.body);
    for (const action of ['create', 'start', 'promote', 'rollback']) expect(text).toContain(action);
  }, 60_000);

  it.skipIf(!env)('keeps serving the last snapshot while the experiment-service is down', async () => {
    await stack.stop('experiment-service');
    const res = await fetch(`${stack.url.gateway}/v1/routes/${route}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-unit-id': units[0]! },
      body: JSON.stringify({ instances: [instance(0)] }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { version: string }).version).toBe('v1');
    await stack.start('experiment-service');
  }, 60_000);
});
