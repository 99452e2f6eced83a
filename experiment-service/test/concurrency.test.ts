import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { integrationServer } from '@bunryu/platform/testing';
import type { Change, ExperimentStore } from '../src/store/experiment-store.ts';
import { bearer, definition, seed, startApp, storeFixture, type StoreFixture, type TestApp } from './support/service.ts';

/**
 * A store whose next `n` commits wait for one another, so the changes behind them are all
 * validated before any is written: the worst interleaving of concurrent requests, on demand.
 */
class CommitBarrier {
  private waiting: (() => void)[] = [];
  private remaining = 0;

  arm(n: number): void {
    this.remaining = n;
  }

  wrap(store: ExperimentStore): ExperimentStore {
    const commit = async (change: Change) => {
      if (this.remaining > 0) {
        this.remaining--;
        await new Promise<void>((resolve) => {
          this.waiting.push(resolve);
          if (this.remaining === 0) for (const release of this.waiting.splice(0)) release();
        });
      }
      return store.commit(change);
    };
    return new Proxy(store, { get: (target, prop) => (prop === 'commit' ? commit : Reflect.get(target, prop, target)) });
  }
}

const redis = await integrationServer('REDIS_URL', 'redis://127.0.0.1:6379');

interface Weighted {
  version: number;
  variants: { key: string; weight: number }[];
}

/**
 * Concurrent writers through HTTP. On Redis the requests are spread over two service instances
 * sharing one store, as replicas behind a load balancer would be.
 */
describe.each(['file', 'redis'] as const)('concurrent changes on the %s store', (kind) => {
  describe.skipIf(kind === 'redis' && !redis.url)(`${kind}`, () => {
    let fixture: StoreFixture;
    let instances: TestApp[];
    let apps: FastifyInstance[];
    let barrier: CommitBarrier;

    beforeEach(async () => {
      fixture = await storeFixture(kind, redis.url);
      barrier = new CommitBarrier();
      const wrap = (s: ExperimentStore) => barrier.wrap(s);
      instances = [await startApp(fixture, {}, wrap)];
      if (kind === 'redis') instances.push(await startApp(fixture, {}, wrap));
      apps = instances.map((i) => i.app);
      await seed(apps[0]!);
    });
    afterEach(async () => {
      await Promise.all(instances.map((i) => i.close()));
      await fixture.cleanup();
    });

    const on = (i: number) => apps[i % apps.length]!;
    const post = (i: number, url: string, payload?: object, headers: Record<string, string> = {}) =>
      on(i).inject({ method: 'POST', url, headers: { ...bearer('admin'), ...headers }, ...(payload ? { payload } : {}) });
    const weightsOf = (i: number) => ({ control: i + 1, treatment: 99 - i });

    async function running(key = 'ranker-v2'): Promise<number> {
      expect((await post(0, '/v1/experiments', definition({ key }))).statusCode).toBe(201);
      const r = await post(0, `/v1/experiments/${key}/start`);
      expect(r.statusCode).toBe(200);
      return r.json<Weighted>().version;
    }

    it('50 ramps with the same If-Match: exactly one wins, the others get 412, nothing else changes', async () => {
      const version = await running();
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => post(i, '/v1/experiments/ranker-v2/ramp', { weights: weightsOf(i) }, { 'if-match': `"${version}"` })),
      );
      const statuses = results.map((r) => r.statusCode);
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s === 412)).toHaveLength(49);

      const winner = statuses.indexOf(200);
      const final = (await on(1).inject({ method: 'GET', url: '/v1/experiments/ranker-v2', headers: bearer('viewer') })).json<Weighted>();
      expect(final.version).toBe(version + 1);
      expect(final.variants.map((v) => v.weight)).toEqual(Object.values(weightsOf(winner)));
      const history = (await on(0).inject({ method: 'GET', url: '/v1/experiments/ranker-v2/history', headers: bearer('viewer') })).json<{ action: string }[]>();
      expect(history.filter((h) => h.action === 'ramp')).toHaveLength(1);
    });

    it('50 ramps without If-Match: every one is applied, in some order, none lost', async () => {
      const version = await running();
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => post(i, '/v1/experiments/ranker-v2/ramp', { weights: weightsOf(i) })));
      expect(results.map((r) => r.statusCode)).toEqual(Array(50).fill(200));
      const versions = results.map((r) => r.json<Weighted>().version).sort((a, b) => a - b);
      expect(versions).toEqual(Array.from({ length: 50 }, (_, i) => version + 1 + i));

      const history = (await on(0).inject({ method: 'GET', url: '/v1/experiments/ranker-v2/history', headers: bearer('viewer') })).json<
        { action: string; before: Weighted; after: Weighted }[]
      >();
      const ramps = history.filter((h) => h.action === 'ramp');
      expect(ramps).toHaveLength(50);
      // Each ramp starts from the previous one's result: a chain, not lost updates.
      ramps.forEach((r, i) => expect(r.before.version).toBe(i === 0 ? version : ramps[i - 1]!.after.version));
      const applied = ramps.map((r) => r.after.variants[0]!.weight).sort((a, b) => a - b);
      expect(applied).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    });

    it('two experiments racing for the same range of a layer: exactly one starts', async () => {
      for (const key of ['a', 'b']) expect((await post(0, '/v1/experiments', definition({ key, trafficPercent: 60 }))).statusCode).toBe(201);
      barrier.arm(2);
      const results = await Promise.all([post(0, '/v1/experiments/a/start'), post(1, '/v1/experiments/b/start')]);
      expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409]);
      expect(results.find((r) => r.statusCode === 409)!.json().error.code).toBe('BUNRYU_LAYER_FULL');
    });

    it('two experiments of different layers racing to set the same parameter: exactly one starts', async () => {
      for (const key of ['a', 'b']) expect((await post(0, '/v1/experiments', definition({ key, layer: key }))).statusCode).toBe(201);
      barrier.arm(2);
      const results = await Promise.all([post(0, '/v1/experiments/a/start'), post(1, '/v1/experiments/b/start')]);
      expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409]);
      expect(results.find((r) => r.statusCode === 409)!.json().error).toMatchObject({ code: 'BUNRYU_PARAM_CONFLICT', details: { param: 'version' } });
    });

    it('creates with the same key at once: one 201, the others 409', async () => {
      barrier.arm(10);
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => post(i, '/v1/experiments', definition({ name: `n${i}` }))));
      expect(results.map((r) => r.statusCode).sort()).toEqual([201, ...Array(9).fill(409)]);
    });
  });
});
