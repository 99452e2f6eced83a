/**
 * The release autopilot on the real processes (issue: guarded rollouts): a treatment that fails
 * a fifth of its requests at 5% is rolled back by itself, and the gateway then serves control to
 * every unit — on the embedded defaults and on Redis + Kafka.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationServer } from '@bunryu/platform/testing';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { failingUpstream, rollbackDrill } from './support/rollback-drill.ts';
import { adminClient, startStack, waitFor, type Stack } from './support/stack.ts';

const redis = await integrationServer('REDIS_URL', 'redis://127.0.0.1:6379');
const kafka = await integrationServer('KAFKA_BROKERS', '127.0.0.1:9092');
const run = randomUUID().slice(0, 8);
const modelDir = mkdtempSync(join(tmpdir(), 'bunryu-e2e-models-'));
afterAll(() => rmSync(modelDir, { recursive: true, force: true }));

const fast = { AUTOPILOT_SERVING_INTERVAL_MS: '1000' };
const modes: [string, Record<string, string> | undefined][] = [
  ['embedded defaults', fast],
  [
    'Redis + Kafka',
    redis.url && kafka.url
      ? { ...fast, REDIS_URL: redis.url, REDIS_PREFIX: `bunryu-ap-${run}:`, KAFKA_BROKERS: kafka.url, BUNRYU_EVENTS_TOPIC: `bunryu.events.ap-${run}`, AGGREGATOR_CONSUMER_GROUP: `bunryu-ap-${run}` }
      : undefined,
  ],
];

describe.each(modes)('the autopilot end to end on %s', (mode, env) => {
  let stack: Stack;
  beforeAll(async () => {
    if (!env) return;
    stack = await startStack(env, modelDir);
  }, 240_000);
  afterAll(async () => {
    await stack?.close();
  });

  it.skipIf(!env)('rolls back a treatment failing 20% of its requests at 5%, and the gateway then serves control to everyone', async () => {
    const key = `bad-${run}-${mode.startsWith('embedded') ? 'e' : 'r'}`;
    const drill = await rollbackDrill(stack, { key, failRate: 0.2, requestsPerSecond: 100, timeoutMs: 90_000 });
    expect(drill.finalStatus).toBe('rolled_back');
    expect(drill.actions).toEqual(['rollback']);
    expect(drill.decision?.reason).toBe('harm');
    expect(drill.secondsToRollback).toBeGreaterThan(0);
    // After the rollback no unit is assigned to the experiment any more: every answer is the route's own (control).
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${stack.url.gateway}/v1/assign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ unitId: `after-${i}`, route: `route-${key}`, attributes: {}, track: false }) });
      expect(await res.json()).toMatchObject({ assignments: [], params: { version: 'v1' } });
    }
    console.log(`${mode}: rolled back ${drill.secondsToRollback.toFixed(1)} s after the first bad answer, ${drill.treatmentUnits} units exposed to the treatment, ${drill.requests} requests`);
  }, 150_000);

  it.skipIf(!env || !mode.startsWith('embedded'))('shows exactly the share of treatment answers that came from the route\'s and from the model\'s fallback', async () => {
    const key = `served-${run}`;
    const route = `route-${key}`;
    const admin = adminClient(stack.url['experiment-service'], stack.token);
    // The treatment's upstream: every 5th answer a 503 (the route's fallback answers), every 4th
    // of the rest from the model-server's fallback version. It counts what it did.
    let n = 0;
    const did = { routeFallback: 0, modelFallback: 0, total: 0 };
    const treatment = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        n++;
        did.total++;
        if (n % 5 === 0) {
          did.routeFallback++;
          return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"down"}');
        }
        const model = n % 4 === 0;
        if (model) did.modelFallback++;
        res.writeHead(200, { 'content-type': 'application/json', ...(model ? { 'x-model-fallback': 'true' } : {}) }).end('{"predictions":[0.5]}');
      });
    });
    const control = await failingUpstream(0);
    await new Promise<void>((r) => treatment.listen(0, '127.0.0.1', r));
    try {
      const upstream = `http://127.0.0.1:${(treatment.address() as AddressInfo).port}`;
      expect((await admin('PUT', `/v1/routes/${route}`, { upstream: control.url, path: '/predict', defaultParams: { version: 'v1' }, fallback: { status: 200, body: { predictions: [] } } })).status).toBeLessThan(300);
      const created = await admin('POST', '/v1/experiments', {
        key,
        route,
        variants: [
          { key: 'control', weight: 50, params: { version: 'v1' } },
          { key: 'treatment', weight: 50, params: { version: 'v2' }, upstream },
        ],
        analysis: { cuped: false },
      });
      expect(created.status).toBe(201);
      expect((await admin('POST', `/v1/experiments/${key}/start`)).status).toBe(200);
      await waitFor('the gateway to assign the experiment', async () => {
        const res = await fetch(`${stack.url.gateway}/v1/assign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ unitId: 'probe', route, attributes: {}, track: false }) });
        return ((await res.json()) as { assignments: unknown[] }).assignments.length === 1;
      });
      let treatmentAnswers = 0;
      for (let i = 0; i < 400; i += 20) {
        await Promise.all(
          Array.from({ length: 20 }, async (_, k) => {
            const res = await fetch(`${stack.url.gateway}/v1/routes/${route}/predict`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-unit-id': `${key}-u${i + k}` }, body: '{"instances":[{"x":1}]}' });
            await res.arrayBuffer();
            expect(res.status).toBe(200);
            if ((res.headers.get('x-ab-assignments') ?? '').includes(`${key}=treatment`)) treatmentAnswers++;
          }),
        );
      }
      expect(did.total).toBe(treatmentAnswers);
      const served = await waitFor(
        'every exposure in the results',
        async () => {
          const res = await fetch(`${stack.url.aggregator}/v1/results/${key}`, { headers: { authorization: `Bearer ${stack.token}` } });
          const body = (await res.json()) as { served?: { key: string; exposures: number; asAssigned: number; routeFallback: number; modelFallback: number }[] };
          const t = body.served?.find((x) => x.key === 'treatment');
          return t && t.exposures === treatmentAnswers && body.served;
        },
        30_000,
      );
      const t = served.find((x) => x.key === 'treatment')!;
      expect(t.routeFallback).toBe(did.routeFallback / did.total);
      expect(t.modelFallback).toBe(did.modelFallback / did.total);
      expect(t.asAssigned).toBeCloseTo(1 - (did.routeFallback + did.modelFallback) / did.total, 12);
      expect(served.find((x) => x.key === 'control')).toMatchObject({ asAssigned: 1, routeFallback: 0, modelFallback: 0 });
      // "As served": each unit made one request, so the treatment keeps exactly the units its own model answered.
      const asServed = await fetch(`${stack.url.aggregator}/v1/results/${key}/as-served`, { headers: { authorization: `Bearer ${stack.token}` } });
      const figures = (await asServed.json()) as { biased: boolean; variants: { key: string; units: number }[] };
      expect(figures.biased).toBe(true);
      expect(figures.variants.find((v) => v.key === 'treatment')!.units).toBe(treatmentAnswers - did.routeFallback - did.modelFallback);
      console.log(`assigned vs served: treatment ${treatmentAnswers} answers, route fallback ${(t.routeFallback * 100).toFixed(1)}%, model fallback ${(t.modelFallback * 100).toFixed(1)}%`);
    } finally {
      await new Promise((r) => treatment.close(r));
      await control.close();
    }
  }, 120_000);

  it.skipIf(!env)('walks a healthy treatment through every step and promotes it', async () => {
    const key = `good-${run}-${mode.startsWith('embedded') ? 'e' : 'r'}`;
    const quick = (control: number, treatment: number) => ({ weights: { control, treatment }, minMinutes: 0, minUnits: 30 });
    const drill = await rollbackDrill(stack, {
      key,
      failRate: 0,
      requestsPerSecond: 100,
      timeoutMs: 90_000,
      rollout: {
        steps: [quick(95, 5), quick(75, 25), quick(50, 50)],
        guardrails: [{ metric: 'error_rate', harm: 'increase', margin: 0 }],
        minUnitsForDecision: 30,
        whenDone: 'promote',
      },
    });
    expect(drill.actions).toEqual(['ramp', 'ramp', 'promote']);
    expect(drill.finalStatus).toBe('released');
    // Released: every unit gets the treatment's params, and no one is assigned any more.
    const res = await fetch(`${stack.url.gateway}/v1/assign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ unitId: 'anyone', route: `route-${key}`, attributes: {}, track: false }) });
    expect(await res.json()).toMatchObject({ assignments: [], params: { version: 'v2' } });
  }, 150_000);
});
