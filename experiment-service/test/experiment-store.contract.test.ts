import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventDeclaration, Experiment, Route } from '@bunryu/core';
import { integrationServer } from '@bunryu/platform/testing';
import { StaleWriteError, type AuditInput, type ExperimentStore } from '../src/store/experiment-store.ts';
import { storeFixture, type StoreFixture } from './support/service.ts';

const redis = await integrationServer('REDIS_URL', 'redis://127.0.0.1:6379');

const actor = { role: 'editor', name: 'pm-ann' } as const;

function experiment(key: string, version: number, extra: Partial<Experiment> = {}): Experiment {
  return {
    key,
    route: 'recommend',
    layer: key,
    trafficPercent: 100,
    allocation: { start: 0, end: 10_000 },
    salt: '',
    targeting: [],
    variants: [
      { key: 'control', weight: 33.33, params: { version: '1' } },
      { key: 'treatment', weight: 66.67, params: { version: '2', blend: [0.1, 0.9] } },
    ],
    overrides: {},
    metrics: { guardrails: [] },
    status: 'draft',
    version,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...extra,
  };
}

const route: Route = { key: 'recommend', upstream: 'http://127.0.0.1:9/x', path: '/', defaultParams: { version: '1' }, timeoutMs: 1000, updatedAt: '2026-01-01T00:00:00.000Z' };

function audit(subject: string, action: string, after: unknown = null): AuditInput {
  return { subject, action, actor, at: '2026-01-01T00:00:00.000Z', before: null, after };
}

describe.each(['file', 'redis'] as const)('ExperimentStore contract: %s', (kind) => {
  describe.skipIf(kind === 'redis' && !redis.url)(`${kind} adapter`, () => {
    let fixture: StoreFixture;
    let store: ExperimentStore;

    beforeEach(async () => {
      fixture = await storeFixture(kind, redis.url);
      store = await fixture.open();
    });
    afterEach(async () => {
      await fixture.cleanup();
    });

    it('starts empty at config version 0', async () => {
      expect(await store.version()).toBe(0);
      expect(await store.load()).toEqual({ version: 0, epoch: expect.any(String), experiments: [], routes: [], metrics: [], holdout: null, events: [] });
      expect(await store.getExperiment('nope')).toBeUndefined();
      expect(await store.audit()).toEqual([]);
    });

    it('keeps one epoch across changes and reopenings', async () => {
      const { epoch } = await store.load();
      expect(epoch).toMatch(/^[0-9a-f-]{36}$/);
      await store.commit({ routes: [route], audit: [audit('route:recommend', 'create')] });
      expect((await store.load()).epoch).toBe(epoch);
      const again = await fixture.open();
      expect((await again.load()).epoch).toBe(epoch);
    });

    it('exports everything and imports it into an empty store under a new epoch', async () => {
      const e = experiment('a', 1);
      await store.commit({
        expect: { a: 0 },
        experiments: [e, experiment('b', 1, { status: 'running' })],
        routes: [route],
        metrics: [{ key: 'ctr', type: 'proportion', event: 'click' }],
        holdout: { percent: 5, salt: 'h' },
        audit: [audit('experiment:a', 'create', e), audit('route:recommend', 'create', route)],
      });
      await store.commit({ audit: [{ ...audit('experiment:b', 'pause'), decision: { reason: 'guardrail', evidence: { p: 0.01 } } }] });
      const exported = await store.exportAll();
      expect(exported).toMatchObject({ format: 1, version: 2, epoch: (await store.load()).epoch });
      expect(exported.audit.map((a) => [a.configVersion, a.action])).toEqual([
        [1, 'create'],
        [1, 'create'],
        [2, 'pause'],
      ]);

      const target = await storeFixture(kind, redis.url);
      try {
        const empty = await target.open();
        const before = (await empty.load()).epoch;
        const imported = await empty.importAll(JSON.parse(JSON.stringify(exported)));
        expect(imported.version).toBe(2);
        expect(imported.epoch).not.toBe(before);
        expect(imported.epoch).not.toBe(exported.epoch);
        const back = await empty.exportAll();
        expect(JSON.stringify({ ...back, epoch: '' })).toBe(JSON.stringify({ ...exported, epoch: '' }));
        expect(back.epoch).toBe(imported.epoch);
        expect(await empty.audit({ subject: 'experiment:b' })).toEqual(await store.audit({ subject: 'experiment:b' }));
        // Another instance on the same data (a replica, a restart) serves the import.
        expect((await (await target.open()).load()).epoch).toBe(imported.epoch);
        // And changes carry on from the imported version.
        expect((await empty.commit({ routes: [{ ...route, timeoutMs: 9 }], audit: [] })).version).toBe(3);
      } finally {
        await target.cleanup();
      }
    });

    it('refuses an import into a store that is not empty, and writes none of it', async () => {
      await store.commit({ routes: [route], audit: [audit('route:recommend', 'create')] });
      const exported = await store.exportAll();
      await expect(store.importAll({ ...exported, routes: [{ ...route, key: 'other' }] })).rejects.toMatchObject({ code: 'BUNRYU_ALREADY_EXISTS', statusCode: 409 });
      expect(await store.exportAll()).toEqual(exported);
    });

    it('refuses reads and writes once its data is gone, until an export is imported', async () => {
      const e = experiment('a', 1);
      await store.commit({ expect: { a: 0 }, experiments: [e], routes: [route], audit: [audit('experiment:a', 'create', e)] });
      const exported = await store.exportAll();
      await fixture.wipe();
      // Redis: the running instance notices; files: the next start does.
      const after = kind === 'redis' ? store : await fixture.open();
      const refused = { code: 'BUNRYU_NOT_READY', statusCode: 503, message: expect.stringMatching(/lost|gone/) };
      await expect(after.commit({ routes: [{ ...route, key: 'new' }], audit: [] })).rejects.toMatchObject(refused);
      await expect(after.ping()).rejects.toMatchObject(refused);
      await expect(after.load()).rejects.toMatchObject(refused);
      await expect(after.version()).rejects.toMatchObject(refused);

      const { epoch } = await after.importAll(exported);
      expect(epoch).not.toBe(exported.epoch);
      await after.ping();
      expect((await after.load()).routes).toEqual([route]);
      expect((await after.commit({ routes: [{ ...route, key: 'new' }], audit: [] })).version).toBe(2);
    });

    it('commits a multi-part change at once and counts versions by one', async () => {
      const e = experiment('a', 1);
      const first = await store.commit({
        expect: { a: 0 },
        experiments: [e],
        routes: [route],
        metrics: [{ key: 'ctr', type: 'proportion', event: 'click' }],
        holdout: { percent: 5, salt: 'h' },
        audit: [audit('experiment:a', 'create', e), audit('route:recommend', 'create', route)],
      });
      expect(first.version).toBe(1);
      const second = await store.commit({ routes: [{ ...route, timeoutMs: 50 }], audit: [audit('route:recommend', 'update')] });
      expect(second.version).toBe(2);

      const state = await store.load();
      expect(state.version).toBe(2);
      expect(state.experiments).toEqual([e]);
      expect(state.routes).toEqual([{ ...route, timeoutMs: 50 }]);
      expect(state.metrics).toEqual([{ key: 'ctr', type: 'proportion', event: 'click' }]);
      expect(state.holdout).toEqual({ percent: 5, salt: 'h' });
      expect(await store.getExperiment('a')).toEqual(e);
      expect(await store.version()).toBe(2);
    });

    it('keeps numbers and nested params exactly (weights with two decimals, arrays)', async () => {
      const e = experiment('a', 1);
      await store.commit({ expect: { a: 0 }, experiments: [e], audit: [audit('experiment:a', 'create', e)] });
      const [entry] = await store.audit();
      expect((await store.getExperiment('a'))!.variants).toEqual(e.variants);
      expect(entry!.after).toEqual(e);
    });

    it('refuses a change whose expected version moved, and writes none of it', async () => {
      await store.commit({ expect: { a: 0 }, experiments: [experiment('a', 1)], audit: [audit('experiment:a', 'create')] });
      await store.commit({ expect: { b: 0 }, experiments: [experiment('b', 1)], audit: [audit('experiment:b', 'create')] });

      const attempt = store.commit({
        expect: { a: 1, b: 7 },
        experiments: [experiment('a', 2, { status: 'running' })],
        routes: [route],
        holdout: { percent: 50, salt: '' },
        audit: [audit('experiment:a', 'start')],
      });
      await expect(attempt).rejects.toBeInstanceOf(StaleWriteError);
      await expect(attempt).rejects.toMatchObject({ key: 'b', expected: 7, actual: 1 });

      const state = await store.load();
      expect(state.version).toBe(2);
      expect(state.experiments.find((e) => e.key === 'a')!.status).toBe('draft');
      expect(state.routes).toEqual([]);
      expect(state.holdout).toBeNull();
      expect((await store.audit()).map((e) => e.action)).toEqual(['create', 'create']);
    });

    it('refuses a change whose expected route moved, and writes none of it', async () => {
      await store.commit({ routes: [route], audit: [] });
      const asRead = (await store.load()).routes[0]!;
      await store.commit({ routes: [{ ...route, defaultParams: { version: 'edited' } }], audit: [] });
      const attempt = store.commit({ expectRoutes: { recommend: JSON.stringify(asRead) }, routes: [{ ...route, defaultParams: { version: 'stale' } }], audit: [audit('route:recommend', 'update')] });
      await expect(attempt).rejects.toMatchObject({ name: 'StaleWriteError', key: 'route:recommend' });
      expect((await store.load()).routes[0]!.defaultParams).toEqual({ version: 'edited' });
      expect(await store.audit({ subject: 'route:recommend' })).toEqual([]);
      // As read now, and "must not exist" for a route nobody defined, it goes through.
      const fresh = JSON.stringify((await store.load()).routes[0]);
      await store.commit({ expectRoutes: { recommend: fresh, other: null }, routes: [{ ...route, timeoutMs: 7 }], audit: [] });
      expect((await store.load()).routes[0]!.timeoutMs).toBe(7);
      await expect(store.commit({ expectRoutes: { recommend: null }, routes: [], audit: [] })).rejects.toMatchObject({ key: 'route:recommend' });
    });

    it('treats an expected version 0 as "must not exist"', async () => {
      await store.commit({ expect: { a: 0 }, experiments: [experiment('a', 1)], audit: [] });
      await expect(store.commit({ expect: { a: 0 }, experiments: [experiment('a', 1)], audit: [] })).rejects.toMatchObject({ key: 'a', actual: 1 });
    });

    it('lets exactly one of many concurrent writers at the same version win', async () => {
      await store.commit({ expect: { a: 0 }, experiments: [experiment('a', 1)], audit: [] });
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, (_, i) =>
          store.commit({ expect: { a: 1 }, experiments: [experiment('a', 2, { name: `writer ${i}` })], audit: [audit('experiment:a', 'update')] }),
        ),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof StaleWriteError)).toBe(true);
      expect(await store.version()).toBe(2);
      expect(await store.audit({ subject: 'experiment:a' })).toHaveLength(1);
    });

    it('keeps the audit log in order, by subject, with the config version of each change', async () => {
      await store.commit({ expect: { a: 0 }, experiments: [experiment('a', 1)], audit: [audit('experiment:a', 'create')] });
      await store.commit({ routes: [route], audit: [audit('route:recommend', 'create')] });
      await store.commit({ expect: { a: 1 }, experiments: [experiment('a', 2)], audit: [audit('experiment:a', 'start')] });
      await store.commit({ holdout: { percent: 1, salt: '' }, audit: [audit('holdout', 'set')] });

      const all = await store.audit();
      expect(all.map((e) => [e.configVersion, e.subject, e.action])).toEqual([
        [1, 'experiment:a', 'create'],
        [2, 'route:recommend', 'create'],
        [3, 'experiment:a', 'start'],
        [4, 'holdout', 'set'],
      ]);
      expect(all[0]).toEqual({ configVersion: 1, ...audit('experiment:a', 'create') });
      expect((await store.audit({ subject: 'experiment:a' })).map((e) => e.action)).toEqual(['create', 'start']);
      expect((await store.audit({ limit: 2 })).map((e) => e.configVersion)).toEqual([3, 4]);
      expect((await store.audit({ subject: 'experiment:a', limit: 1 })).map((e) => e.action)).toEqual(['start']);
      expect(await store.audit({ subject: 'experiment:zzz' })).toEqual([]);
    });

    it('tells change listeners the new version', async () => {
      const heard: number[] = [];
      const unsubscribe = await store.onChange((v) => heard.push(v));
      await store.commit({ routes: [route], audit: [] });
      await store.commit({ routes: [route], audit: [] });
      await expect.poll(() => heard).toEqual([1, 2]);
      unsubscribe();
      await store.commit({ routes: [route], audit: [] });
      await new Promise((r) => setTimeout(r, 50));
      expect(heard).toEqual([1, 2]);
    });

    it('keeps everything for the next instance (restart or another replica)', async () => {
      const e = experiment('a', 1);
      await store.commit({ expect: { a: 0 }, experiments: [e], routes: [route], holdout: { percent: 2, salt: 's' }, audit: [audit('experiment:a', 'create', e)] });
      if (kind === 'file') await store.close(); // one process owns a directory
      const next = await fixture.open();
      expect(await next.load()).toEqual(await (kind === 'file' ? next : store).load());
      expect((await next.load()).experiments).toEqual([e]);
      expect(await next.audit()).toHaveLength(1);
      // Versions keep counting from where they were.
      expect((await next.commit({ routes: [route], audit: [] })).version).toBe(2);
    });

    it('hands out frozen experiments, which callers cannot change under other readers', async () => {
      await store.commit({ expect: { a: 0 }, experiments: [experiment('a', 1)], audit: [] });
      const [e] = (await store.load()).experiments;
      expect(Object.isFrozen(e)).toBe(true);
      expect(Object.isFrozen(e!.variants[0]!.params)).toBe(true);
    });

    it('keeps event declarations by type, replacing one in place, atomically with its audit entry', async () => {
      const click: EventDeclaration = {
        type: 'click',
        description: 'A click on a shown item',
        owner: 'growth',
        attributes: { position: { type: 'number', required: true }, surface: { type: 'string', enum: ['home', 'search'] } },
        status: 'proposed',
        version: 1,
        proposedBy: 'pm-ann',
        updatedAt: '2026-01-01T00:00:00.000Z',
        approved: null,
      };
      const dwell: EventDeclaration = { ...click, type: 'dwell', attributes: {}, value: { unit: 'seconds' } };
      await store.commit({ events: [click, dwell], audit: [audit('event:click', 'propose', click)] });
      const approved: EventDeclaration = { ...click, status: 'approved', approvedBy: 'rev', approvedAt: '2026-01-02T00:00:00.000Z', approved: { description: click.description, owner: click.owner, attributes: click.attributes } };
      const { version } = await store.commit({ events: [approved], audit: [audit('event:click', 'approve', approved)] });
      expect(version).toBe(2);
      const state = await store.load();
      expect([...state.events].sort((a, b) => (a.type < b.type ? -1 : 1))).toEqual([approved, dwell]);
      expect((await store.audit({ subject: 'event:click' })).map((e) => [e.action, e.configVersion])).toEqual([
        ['propose', 1],
        ['approve', 2],
      ]);
      if (kind === 'file') await store.close();
      const next = await fixture.open();
      expect((await next.load()).events).toHaveLength(2);
    });

    it('answers ping while open', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
});
