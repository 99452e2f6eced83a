/**
 * The demo's shadow (SPEC §13): a v3 of the demo model, trained like v2 on another sample of the
 * synthetic world, registered on the model-server (its gates run there), and 10% of the demo
 * route's requests copied to it. The routes page then compares v3's answers with what users got,
 * and starts its guarded rollout in one action.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainCandidate } from '../model-server/src/training/train-demo-models.ts';
import { registerVersion } from './release-model.ts';
import { DEMO_ROUTE } from './seed-demo.ts';

export const DEMO_SHADOW_VERSION = 'v3';

export interface ShadowSeedOptions {
  experimentServiceUrl: string;
  modelServerUrl: string;
  token: string;
  log?: (line: string) => void;
}

export async function seedDemoShadow(o: ShadowSeedOptions): Promise<void> {
  const log = o.log ?? (() => {});
  const auth = { authorization: `Bearer ${o.token}` };
  const routeRes = await fetch(`${o.experimentServiceUrl}/v1/routes/${DEMO_ROUTE}`, { headers: auth });
  if (!routeRes.ok) throw new Error(`GET /v1/routes/${DEMO_ROUTE}: ${routeRes.status}`);
  const { key: _key, updatedAt: _updatedAt, ...route } = (await routeRes.json()) as Record<string, unknown>;
  if (route.shadow) return;
  const known = await fetch(`${o.modelServerUrl}/v1/models/${DEMO_ROUTE}/versions/${DEMO_SHADOW_VERSION}`, { headers: auth });
  if (known.status === 404) {
    log(`training ${DEMO_ROUTE}/${DEMO_SHADOW_VERSION} for the demo's shadow`);
    const dir = await mkdtemp(join(tmpdir(), 'bunryu-demo-shadow-'));
    try {
      await trainCandidate(dir, { version: DEMO_SHADOW_VERSION, seed: 20_251_203 });
      const registered = await registerVersion({ modelServerUrl: o.modelServerUrl, token: o.token, model: DEMO_ROUTE, version: DEMO_SHADOW_VERSION, dir });
      if (registered.status !== 'ready') throw new Error(`${DEMO_ROUTE}/${DEMO_SHADOW_VERSION} was not accepted: ${JSON.stringify(registered)}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  log(`shadowing 10% of route "${DEMO_ROUTE}" with version ${DEMO_SHADOW_VERSION}`);
  const put = await fetch(`${o.experimentServiceUrl}/v1/routes/${DEMO_ROUTE}`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ ...route, shadow: { params: { version: DEMO_SHADOW_VERSION }, percent: 10, compare: 'predictions' } }),
  });
  if (!put.ok) throw new Error(`PUT /v1/routes/${DEMO_ROUTE}: ${put.status} ${await put.text()}`);
}
