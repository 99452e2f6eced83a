/**
 * The demo's faulty rollout on the real processes, as `npm run demo -- --rollouts` runs it: the
 * demo seed, v2-faulty registered with its injected faults, the demo plan and the demo's paced
 * traffic on its route, the autopilot on its defaults. It must be rolled back for harm within
 * 90 s, after which the gateway serves v1 to every unit of the route.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEMO_ROLLOUT_VISITS_PER_SECOND, seedRollouts } from '../../scripts/demo-rollouts.ts';
import { driveDemoTraffic } from '../../scripts/demo-traffic.ts';
import { seedDemo } from '../../scripts/seed-demo.ts';
import { adminClient, startStack, waitFor, type Stack } from './support/stack.ts';

const modelDir = mkdtempSync(join(tmpdir(), 'bunryu-e2e-demo-models-'));
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({}, modelDir);
}, 240_000);
afterAll(async () => {
  await stack?.close();
  rmSync(modelDir, { recursive: true, force: true });
});

it('rolls back the demo\'s faulty rollout within 90 s of its start, and the route then serves v1 to everyone', async () => {
  const services = { experimentServiceUrl: stack.url['experiment-service'], modelServerUrl: stack.url['model-server'], token: stack.token, modelDir };
  await seedDemo(services);
  const [faulty] = await seedRollouts({ ...services, only: ['rollout-v2-faulty'] });
  const admin = adminClient(stack.url['experiment-service'], stack.token);
  const startedAt = Date.now();
  const stop = new AbortController();
  const traffic = driveDemoTraffic({ gatewayUrl: stack.url.gateway, route: faulty!.route, users: 1_000_000, seed: 7, concurrency: 4, visitsPerSecond: DEMO_ROLLOUT_VISITS_PER_SECOND, signal: stop.signal });
  let status: string;
  try {
    status = await waitFor(
      'the autopilot to act',
      async () => {
        const e = await admin<{ status: string }>('GET', `/v1/experiments/${faulty!.experiment}`);
        return e.body.status === 'running' ? null : e.body.status;
      },
      90_000,
      500,
    );
  } finally {
    stop.abort();
    await traffic;
  }
  const seconds = (Date.now() - startedAt) / 1000;
  expect(status).toBe('rolled_back');
  const rollout = await admin<{ decisions: { action: string; decision?: { reason: string; message: string } }[] }>('GET', `/v1/experiments/${faulty!.experiment}/rollout`);
  expect(rollout.body.decisions.map((d) => d.action)).toEqual(['rollback']);
  expect(rollout.body.decisions[0]!.decision?.reason).toBe('harm');
  console.log(`demo faulty rollout rolled back ${seconds.toFixed(1)} s after it started: ${rollout.body.decisions[0]!.decision?.message}`);

  // Once the gateway has the rollback, every unit of the route gets v1 and no assignment.
  const predict = async (unit: string) => {
    const res = await fetch(`${stack.url.gateway}/v1/routes/${faulty!.route}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-unit-id': unit },
      body: JSON.stringify({ instances: [{ user_affinity: 0.5, item_popularity: 0.2, recency: 3, price: 20, position: 1 }] }),
    });
    await res.arrayBuffer();
    return { status: res.status, version: res.headers.get('x-model-version'), assignments: res.headers.get('x-ab-assignments') ?? '' };
  };
  await waitFor('the gateway to drop the rollout', async () => (await predict('probe')).assignments === '', 10_000);
  for (let i = 0; i < 60; i++) expect(await predict(`after-${i}`)).toEqual({ status: 200, version: 'v1', assignments: '' });
}, 120_000);
