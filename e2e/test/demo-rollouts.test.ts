/**
 * The seeding of `npm run demo -- --rollouts` against a real experiment-service and model-server
 * (in-process, listening on ports): two guarded rollouts start on their own routes and layers
 * beside the demo experiment, the faulty version is registered and fails the share it says, and
 * a rerun resumes running rollouts or starts fresh ones after finished ones.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnv } from '@bunryu/core';
import { buildApp as buildExperimentService } from '../../experiment-service/src/app.ts';
import { compose as composeExperimentService } from '../../experiment-service/src/compose.ts';
import { ConfigSchema as ExperimentServiceConfig } from '../../experiment-service/src/config.ts';
import { buildApp as buildModelServer } from '../../model-server/src/app.ts';
import { compose as composeModelServer } from '../../model-server/src/compose.ts';
import { ConfigSchema as ModelServerConfig } from '../../model-server/src/config.ts';
import { DEMO_ROLLOUT_PLAN, FAULTY_FAULTS, FAULTY_VERSION, seedRollouts } from '../../scripts/demo-rollouts.ts';
import { DEMO_EXPERIMENT, DEMO_ROUTE, seedDemo } from '../../scripts/seed-demo.ts';

const token = 'demo-rollouts-admin-token';
let dir: string;
let es: FastifyInstance;
let ms: FastifyInstance;
const closers: (() => Promise<void>)[] = [];
let urls: { experimentServiceUrl: string; modelServerUrl: string; token: string; modelDir: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bunryu-demo-rollouts-'));
  // The autopilot off: this test is about what the seed leaves, not what the autopilot then does.
  const esConfig = parseEnv(ExperimentServiceConfig, { LOG_LEVEL: 'silent', BUNRYU_ADMIN_TOKEN: token, BUNRYU_DATA_DIR: join(dir, 'data'), BUNRYU_AUTOPILOT: 'off' });
  const esDeps = await composeExperimentService(esConfig);
  es = await buildExperimentService(esConfig, esDeps);
  closers.push(async () => {
    await es.close();
    await esDeps.close();
  });
  const modelDir = join(dir, 'models');
  const msConfig = parseEnv(ModelServerConfig, { LOG_LEVEL: 'silent', BUNRYU_ADMIN_TOKEN: token, MODEL_DIR: modelDir, MODEL_WATCH: 'false' });
  const msDeps = await composeModelServer(msConfig, { progress: () => {} });
  ms = await buildModelServer(msConfig, msDeps);
  closers.push(async () => {
    await ms.close();
    await msDeps.close();
  });
  urls = {
    experimentServiceUrl: await es.listen({ port: 0, host: '127.0.0.1' }),
    modelServerUrl: await ms.listen({ port: 0, host: '127.0.0.1' }),
    token,
    modelDir,
  };
  await seedDemo(urls);
}, 120_000);
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await rm(dir, { recursive: true, force: true });
});

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${urls.experimentServiceUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
}

interface Experiment {
  key: string;
  status: string;
  route: string;
  layer: string;
  version: number;
  variants: { key: string; weight: number; params: Record<string, unknown> }[];
  rollout?: { steps: unknown[]; whenDone: string };
  rolloutState?: { step: number; autopilot: string };
}

describe('seeding the demo rollouts', () => {
  it('starts a rollout of v2 and one of v2-faulty, each on its own route and layer, beside the running demo experiment', async () => {
    const seeded = await seedRollouts(urls);
    expect(seeded.map((r) => [r.experiment, r.route, r.version])).toEqual([
      ['rollout-v2', 'recommend-rollout-v2', 'v2'],
      ['rollout-v2-faulty', 'recommend-rollout-faulty', FAULTY_VERSION],
    ]);
    const demo = (await api<Experiment>('GET', `/v1/experiments/${DEMO_EXPERIMENT}`)).body;
    expect(demo).toMatchObject({ status: 'running', route: DEMO_ROUTE, layer: 'ranking' });
    const layers = new Set([demo.layer]);
    const routes = new Set([demo.route]);
    for (const r of seeded) {
      const e = (await api<Experiment>('GET', `/v1/experiments/${r.experiment}`)).body;
      expect(e.status).toBe('running');
      expect(e.rolloutState).toMatchObject({ step: 0, autopilot: 'active' });
      expect(e.rollout).toMatchObject({ steps: DEMO_ROLLOUT_PLAN.steps, whenDone: 'promote' });
      expect(e.variants.map((v) => [v.key, v.weight, v.params.version])).toEqual([
        ['control', 90, 'v1'],
        ['treatment', 10, r.version],
      ]);
      layers.add(e.layer);
      routes.add(e.route);
      const route = await api<{ upstream: string }>('GET', `/v1/routes/${e.route}`);
      expect(route.status).toBe(200);
    }
    // Three experiments, three layers and three routes: no rollout shares units or a parameter with another.
    expect(layers.size).toBe(3);
    expect(routes.size).toBe(3);
    const config = await api<{ experiments: { key: string; status: string }[] }>('GET', '/v1/config');
    expect(config.body.experiments.filter((e) => e.status === 'running').map((e) => e.key).sort()).toEqual(['rank-interleaved', 'recommend-v2', 'rollout-v2', 'rollout-v2-faulty']);
  });

  it('registers v2-faulty ready on the model-server, and it fails exactly the share its faults name', async () => {
    const view = await (await fetch(`${urls.modelServerUrl}/v1/models/recommend/versions/${FAULTY_VERSION}`)).json();
    expect(view).toMatchObject({ status: 'ready' });
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${urls.modelServerUrl}/v1/models/recommend/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-ab-params': JSON.stringify({ version: FAULTY_VERSION }) },
        body: JSON.stringify({ instances: [{ user_affinity: 0.5, item_popularity: 0.2, recency: 3, price: 20, position: 1 }] }),
      });
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    expect(statuses.filter((s) => s === 500)).toHaveLength(50 * FAULTY_FAULTS.errorRate);
    expect(statuses.filter((s) => s === 200)).toHaveLength(50 * (1 - FAULTY_FAULTS.errorRate));
  });

  it('leaves running rollouts alone on a rerun, and starts fresh ones after finished ones', async () => {
    const before = (await api<Experiment>('GET', '/v1/experiments/rollout-v2')).body;
    expect((await seedRollouts(urls)).map((r) => r.experiment)).toEqual(['rollout-v2', 'rollout-v2-faulty']);
    expect((await api<Experiment>('GET', '/v1/experiments/rollout-v2')).body.version).toBe(before.version);

    expect((await api('POST', '/v1/experiments/rollout-v2/promote', { variant: 'treatment' })).status).toBe(200);
    expect((await api('POST', '/v1/experiments/rollout-v2-faulty/rollback')).status).toBe(200);
    const again = await seedRollouts(urls);
    expect(again.map((r) => r.experiment)).toEqual(['rollout-v2-2', 'rollout-v2-faulty-2']);
    expect((await api<Experiment>('GET', '/v1/experiments/rollout-v2')).body.status).toBe('archived');
    expect((await api<Experiment>('GET', '/v1/experiments/rollout-v2-faulty')).body.status).toBe('archived');
    for (const r of again) expect((await api<Experiment>('GET', `/v1/experiments/${r.experiment}`)).body).toMatchObject({ status: 'running', route: r.route, layer: r.experiment });
  });
});
