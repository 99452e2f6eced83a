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
import { rollbackDrill } from './support/rollback-drill.ts';
import { startStack, type Stack } from './support/stack.ts';

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
