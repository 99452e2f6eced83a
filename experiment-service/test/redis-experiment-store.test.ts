import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { integrationServer } from '@bunryu/platform/testing';
import { RedisExperimentStore } from '../src/store/redis-experiment-store.ts';
import { dropPrefix, uniquePrefix } from './support/service.ts';

const redis = await integrationServer('REDIS_URL', 'redis://127.0.0.1:6379');
const route = { key: 'r', upstream: 'http://127.0.0.1:9/', path: '/', defaultParams: {}, timeoutMs: 1000, updatedAt: 'now' };

describe.skipIf(!redis.url)('RedisExperimentStore across replicas', () => {
  let prefix: string;
  let stores: RedisExperimentStore[];
  beforeEach(() => {
    prefix = uniquePrefix();
    stores = [];
  });
  afterEach(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await dropPrefix(redis.url!, prefix);
  });
  const open = (p = prefix, auditMaxEntries?: number) => {
    const s = new RedisExperimentStore({ url: redis.url!, prefix: p, ...(auditMaxEntries === undefined ? {} : { auditMaxEntries }) });
    stores.push(s);
    return s;
  };

  it('announces a change made by one instance to the listeners of another', async () => {
    const [a, b] = [open(), open()];
    const heard: number[] = [];
    await b.onChange((v) => heard.push(v));
    await a.commit({ routes: [route], audit: [] });
    await expect.poll(() => heard).toEqual([1]);
  });

  it('keeps the newest AUDIT_MAX_ENTRIES entries of the audit log and of each subject, dropping the oldest', async () => {
    const store = open(prefix, 3);
    const actor = { role: 'admin' as const, name: 'admin' };
    const entry = (subject: string, n: number) => ({ subject, action: `a${n}`, actor, at: '2026-01-01T00:00:00.000Z', before: null, after: n });
    for (let n = 1; n <= 5; n++) await store.commit({ routes: [{ ...route, timeoutMs: n }], audit: [entry('route:r', n)] });
    await store.commit({ routes: [route], audit: [entry('holdout', 6)] });
    expect((await store.audit()).map((e) => e.action)).toEqual(['a4', 'a5', 'a6']);
    expect((await store.audit({ subject: 'route:r' })).map((e) => [e.action, e.configVersion])).toEqual([
      ['a3', 3],
      ['a4', 4],
      ['a5', 5],
    ]);
  });

  it('keeps deployments with different prefixes apart', async () => {
    const other = uniquePrefix();
    try {
      const [a, b] = [open(), open(other)];
      const heard: number[] = [];
      await b.onChange((v) => heard.push(v));
      await a.commit({ routes: [route], audit: [] });
      expect(await b.version()).toBe(0);
      expect((await b.load()).routes).toEqual([]);
      await new Promise((r) => setTimeout(r, 50));
      expect(heard).toEqual([]);
    } finally {
      await dropPrefix(redis.url!, other);
    }
  });

  it('answers 503 (not 500) while Redis is unreachable', async () => {
    const s = new RedisExperimentStore({ url: 'redis://127.0.0.1:1', prefix });
    stores.push(s);
    await expect(s.version()).rejects.toMatchObject({ code: 'BUNRYU_NOT_READY', statusCode: 503 });
  });
});

describe.skipIf(!redis.url)('RedisExperimentStore incremental reads', () => {
  it("sees another instance's changes although it reuses what it parsed before", async () => {
    const prefix = uniquePrefix();
    const a = new RedisExperimentStore({ url: redis.url!, prefix });
    const b = new RedisExperimentStore({ url: redis.url!, prefix });
    try {
      const base = { route: 'r', trafficPercent: 100, allocation: { start: 0, end: 10_000 }, salt: '', targeting: [], overrides: {}, metrics: { guardrails: [] }, status: 'draft' as const, createdAt: 'x', updatedAt: 'x' };
      const exp = (key: string, version: number, weight: number) => ({ ...base, key, layer: key, version, variants: [{ key: 'c', weight, params: {} }, { key: 't', weight: 100 - weight, params: {} }] });
      await a.commit({ experiments: [exp('x', 1, 50), exp('y', 1, 50)], audit: [] });
      const before = await b.load();
      const y = before.experiments.find((e) => e.key === 'y');
      await a.commit({ expect: { x: 1 }, experiments: [exp('x', 2, 10)], audit: [] });
      const after = await b.load();
      expect(after.version).toBe(2);
      expect(after.experiments.find((e) => e.key === 'x')!.variants[0]!.weight).toBe(10);
      expect(after.experiments.find((e) => e.key === 'y')).toBe(y); // unchanged: the same object
    } finally {
      await Promise.all([a.close(), b.close()]);
      await dropPrefix(redis.url!, prefix);
    }
  });
});
