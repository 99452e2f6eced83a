import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { parseEnv, type ExperimentDefinitionInput } from '@bunryu/core';
import { buildApp } from '../../src/app.ts';
import { ConfigSchema, type Config } from '../../src/config.ts';
import type { ExperimentStore } from '../../src/store/experiment-store.ts';
import { FileExperimentStore } from '../../src/store/file-experiment-store.ts';
import { RedisExperimentStore } from '../../src/store/redis-experiment-store.ts';

export const TOKENS = {
  admin: 'admin-token-0001',
  viewer: 'viewer-token-0001',
  editor: 'editor-token-0001',
  releaser: 'releaser-token-0001',
  reviewer: 'reviewer-token-0001',
} as const;
export type TestRole = keyof typeof TOKENS;

export const bearer = (role: TestRole) => ({ authorization: `Bearer ${TOKENS[role]}` });

export function testConfig(env: Record<string, string> = {}): Readonly<Config> {
  return parseEnv(ConfigSchema, {
    LOG_LEVEL: 'silent',
    BUNRYU_ADMIN_TOKEN: TOKENS.admin,
    BUNRYU_TOKENS: `viewer:${TOKENS.viewer},editor:pm-ann:${TOKENS.editor},releaser:${TOKENS.releaser},reviewer:rev-kai:${TOKENS.reviewer}`,
    ...env,
  });
}

export async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'bunryu-es-'));
}

export const uniquePrefix = () => `test:es:${randomUUID()}:`;

/** Deletes every key of a test run's prefix. */
export async function dropPrefix(url: string, prefix: string): Promise<void> {
  const client = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

export type StoreKind = 'file' | 'redis';

/**
 * One backing store (a directory or a Redis prefix) from which store instances are opened, as
 * by separate processes or restarts; `cleanup` closes them and deletes the data.
 */
export async function storeFixture(kind: StoreKind, redisUrl: string | undefined) {
  const opened: ExperimentStore[] = [];
  const dir = kind === 'file' ? await tempDir() : undefined;
  const prefix = uniquePrefix();
  return {
    kind,
    prefix,
    dir,
    async open(): Promise<ExperimentStore> {
      const store = kind === 'file' ? await FileExperimentStore.open(join(dir!, 'experiment-service')) : new RedisExperimentStore({ url: redisUrl!, prefix });
      opened.push(store);
      return store;
    },
    /** Loses the data as a crash might: Redis restarted empty; state.json gone, its audit log left. */
    async wipe(): Promise<void> {
      if (kind === 'redis') await dropPrefix(redisUrl!, prefix);
      else await rm(join(dir!, 'experiment-service', 'state.json'));
    },
    async cleanup(): Promise<void> {
      await Promise.allSettled(opened.map((s) => s.close()));
      if (dir) await rm(dir, { recursive: true, force: true });
      if (kind === 'redis') await dropPrefix(redisUrl!, prefix);
    },
  };
}
export type StoreFixture = Awaited<ReturnType<typeof storeFixture>>;

export interface TestApp {
  app: FastifyInstance;
  store: ExperimentStore;
  close(): Promise<void>;
}

/** The app on a store of `fixture`; `env` overrides the test config. */
export async function startApp(
  fixture: StoreFixture,
  env: Record<string, string> = {},
  wrap: (store: ExperimentStore) => ExperimentStore = (s) => s,
): Promise<TestApp> {
  const store = wrap(await fixture.open());
  const app = await buildApp(testConfig(env), { store, close: () => store.close() });
  return {
    app,
    store,
    async close() {
      await app.close();
      await store.close();
    },
  };
}

export function definition(overrides: Partial<ExperimentDefinitionInput> = {}): ExperimentDefinitionInput {
  return {
    key: 'ranker-v2',
    name: 'Ranker v2 against v1',
    hypothesis: 'v2 lifts CTR by 2%',
    route: 'recommend',
    layer: 'ranking',
    trafficPercent: 100,
    salt: '',
    targeting: [{ attribute: 'country', op: 'in', value: ['JP', 'US'] }],
    variants: [
      { key: 'control', weight: 50, params: { version: '1' } },
      { key: 'treatment', weight: 50, params: { version: '2' } },
    ],
    overrides: { 'qa-user-1': 'treatment' },
    metrics: { primary: 'ctr', guardrails: ['error_rate', 'latency_ms'] },
    ...overrides,
  };
}

/** A route and the `ctr` metric the default definition refers to. */
export async function seed(app: FastifyInstance, route = 'recommend'): Promise<void> {
  const r = await app.inject({
    method: 'PUT',
    url: `/v1/routes/${route}`,
    headers: bearer('admin'),
    payload: { upstream: 'http://127.0.0.1:9/predict', path: '/v1/models/ranker/predict', defaultParams: { version: '1' } },
  });
  if (r.statusCode >= 300) throw new Error(`seeding the route failed: ${r.body}`);
  const m = await app.inject({ method: 'PUT', url: '/v1/metrics/ctr', headers: bearer('editor'), payload: { type: 'proportion', event: 'click' } });
  if (m.statusCode >= 300) throw new Error(`seeding the metric failed: ${m.body}`);
}
