/**
 * The demo's faulty rollout on the real processes, as `npm run demo -- --rollouts` runs it: the
 * demo seed, v2-faulty registered with its injected faults, the demo plan and the demo's paced
 * traffic on its route, the autopilot on its defaults. It must be rolled back for harm within
 * 90 s, after which the gateway serves v1 to every unit of the route.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEMO_ROLLOUT_VISITS_PER_SECOND, seedRollouts } from '../../scripts/demo-rollouts.ts';
import { driveDemoTraffic } from '../../scripts/demo-traffic.ts';
import { registerVersion, startRelease } from '../../scripts/release-model.ts';
import { seedDemo } from '../../scripts/seed-demo.ts';
import { trainCandidate } from '../../model-server/src/training/train-demo-models.ts';
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

/**
 * The model lifecycle's loop on the real processes (SPEC §12): train a candidate, register it
 * (its gates run on the model-server), release it under the autopilot, and the autopilot
 * promotes it — the route's default becomes the new version. Then a version that fails a share
 * of its answers is registered and released, and the autopilot rolls it back: the route keeps
 * the promoted version.
 */
it('trains, registers, gates and releases a version that the autopilot promotes, and rolls back a failing one', async () => {
  const admin = adminClient(stack.url['experiment-service'], stack.token);
  const route = 'loop';
  expect(
    (await admin('PUT', `/v1/routes/${route}`, { upstream: stack.url['model-server'], path: '/v1/models/recommend', defaultParams: { model: 'recommend', version: 'v1' }, timeoutMs: 300 })).status,
  ).toBeLessThan(300);
  const plan = {
    steps: [{ weights: { control: 50, treatment: 50 }, minMinutes: 0, minUnits: 60 }],
    guardrails: [
      { metric: 'error_rate', harm: 'increase', margin: 0 },
      { metric: 'latency_ms', harm: 'increase', margin: 0.5 },
    ],
    alpha: 0.05,
    minUnitsForDecision: 50,
    onHarm: 'rollback',
    onSrm: 'pause',
    onNoTraffic: { afterMinutes: 60, action: 'pause' },
    whenDone: 'promote',
  };
  const services = { modelServerUrl: stack.url['model-server'], experimentServiceUrl: stack.url['experiment-service'], token: stack.token };
  const release = async (version: string): Promise<{ key: string; status: string }> => {
    const { key } = await startRelease({ ...services, route, params: { version }, plan });
    const stop = new AbortController();
    const traffic = driveDemoTraffic({ gatewayUrl: stack.url.gateway, route, users: 1_000_000, seed: version.length + version.charCodeAt(1), concurrency: 4, visitsPerSecond: 40, signal: stop.signal });
    try {
      const status = await waitFor('the autopilot to decide', async () => {
        const e = await admin<{ status: string }>('GET', `/v1/experiments/${key}`);
        return e.body.status === 'running' ? null : e.body.status;
      }, 100_000, 500);
      return { key, status };
    } finally {
      stop.abort();
      await traffic;
    }
  };
  const routeDefault = async () => (await admin<{ defaultParams: Record<string, unknown> }>('GET', `/v1/routes/${route}`)).body.defaultParams.version;

  // Train → register → gates → release → promoted.
  const dir = join(modelDir, '..', `candidate-${Date.now()}`);
  await trainCandidate(join(dir, 'v3'), { version: 'v3', rows: 20_000 });
  const v3 = await registerVersion({ ...services, model: 'recommend', version: 'v3', dir: join(dir, 'v3') });
  expect(v3.status).toBe('ready');
  expect(v3.gates.map((g) => [g.name, g.passed])).toEqual([['loads', true], ['features', true], ['smoke', true], ['latency', true], ['offline', true]]);
  const promoted = await release('v3');
  expect(promoted.status).toBe('released');
  expect(await routeDefault()).toBe('v3');

  // A version that fails one answer in four passes its offline gates, and the autopilot rolls it back.
  const meta = JSON.parse(await readFile(join(dir, 'v3', 'model.json'), 'utf8'));
  await mkdir(join(dir, 'v4'), { recursive: true });
  await writeFile(join(dir, 'v4', 'model.onnx'), await readFile(join(dir, 'v3', 'model.onnx')));
  await writeFile(join(dir, 'v4', 'model.json'), JSON.stringify({ ...meta, faults: { errorRate: 0.25 } }));
  const v4 = await registerVersion({ ...services, model: 'recommend', version: 'v4', dir: join(dir, 'v4') });
  expect(v4.status).toBe('ready');
  const rolledBack = await release('v4');
  expect(rolledBack.status).toBe('rolled_back');
  expect(await routeDefault()).toBe('v3');
  const history = await admin<{ action: string; actor: { name: string } }[]>('GET', `/v1/routes/${route}/history`);
  expect(history.status).toBe(200);
  rmSync(dir, { recursive: true, force: true });
  console.log(`lifecycle loop: v3 promoted (gates ${v3.gates.map((g) => g.name).join(', ')} passed), v4 rolled back`);
}, 240_000);
