import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_EVENTS_PER_CALL, assign, type ConfigSnapshot, type Event } from '@bunryu/core';
import type { EventTap } from './support/event-tap.ts';
import type { TestGateway } from './support/gateway.ts';
import { startReadyGateway, type ReadyGateway } from './support/ready-gateway.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';

describe('POST /v1/assign and POST /v1/events', () => {
  let ready: ReadyGateway;
  let gw: TestGateway;
  let config: ConfigSnapshot;
  let tap: EventTap;

  beforeAll(async () => {
    config = snapshot(
      1,
      [route('recommend', 'http://127.0.0.1:9', { defaultParams: { model: 'm' } }), route('search', 'http://127.0.0.1:9'), route('idle', 'http://127.0.0.1:9')],
      [
        experiment('ranker', 'recommend', { overrides: { 'qa-user': 'treatment' } }),
        experiment('jp-only', 'recommend', { targeting: [{ attribute: 'country', op: 'eq', value: 'JP' }] }),
        experiment('speller', 'search'),
        experiment('old', 'search', { status: 'paused' }),
      ],
    );
    ready = await startReadyGateway(config);
    ({ gw, tap } = ready);
  });

  afterAll(() => ready?.close());

  const post = (path: string, body: unknown) =>
    fetch(gw.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  const logged = (): Promise<Event[]> => tap.drain();

  describe('/v1/assign', () => {
    it('answers assignments and params, and logs an exposure', async () => {
      await logged();
      const res = await post('/v1/assign', { unitId: 'u-7', route: 'recommend', attributes: { country: 'JP' } });
      expect(res.status).toBe(200);
      const body = await res.json();
      const want = assign(config, 'recommend', 'u-7', { country: 'JP' });
      expect(body).toEqual({ unitId: 'u-7', route: 'recommend', assignments: want.assignments, params: want.params, holdout: false });
      expect(body.assignments.map((a: { experiment: string }) => a.experiment)).toEqual(['jp-only', 'ranker']);
      const events = await logged();
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ type: 'exposure', unitId: 'u-7', route: 'recommend', requestId: res.headers.get('x-request-id'), attributes: { country: 'JP' } });
      expect(events[0]!.assignments).toHaveLength(2);
    });

    it('logs nothing when track is false, and no exposure for forced assignments only', async () => {
      await logged();
      await post('/v1/assign', { unitId: 'u-8', route: 'recommend', track: false });
      const forced = await (await post('/v1/assign', { unitId: 'qa-user', route: 'recommend' })).json();
      expect(forced.assignments).toEqual([{ experiment: 'ranker', variant: 'treatment', forced: true }]);
      expect(await logged()).toEqual([]);
    });

    it('rejects bad bodies naming the field, and unknown routes', async () => {
      const bad = await post('/v1/assign', { unitId: '', route: 'recommend', attributes: { x: [1] } });
      expect(bad.status).toBe(400);
      const fields = (await bad.json()).error.details.fields.map((f: { path: string }) => f.path);
      expect(fields).toEqual(expect.arrayContaining(['unitId', 'attributes.x']));
      const unknown = await post('/v1/assign', { unitId: 'u', route: 'nope' });
      expect(unknown.status).toBe(404);
    });

    it('refuses a unit id with a lone surrogate (no UTF-8 exists for it), in /v1/assign and /v1/events', async () => {
      const bad = await post('/v1/assign', { unitId: 'u-\ud800', route: 'recommend' });
      expect(bad.status).toBe(400);
      expect((await bad.json()).error.details.fields.map((f: { path: string }) => f.path)).toEqual(['unitId']);
      expect((await post('/v1/assign', { unitId: 'u-😀', route: 'recommend' })).status).toBe(200);
      await logged();
      const events = await (await post('/v1/events', { events: [{ type: 'click', unitId: '\udc00x' }, { type: 'click', unitId: 'u-😀' }] })).json();
      expect(events.accepted).toBe(1);
      expect(events.rejected[0].reason).toMatch(/^events\.0\.unitId: must be valid Unicode/);
      await logged();
    });
  });

  describe('/v1/events', () => {
    it('keeps the valid events, rejects each invalid one with its index and reason', async () => {
      await logged();
      const givenId = randomUUID();
      const res = await post('/v1/events', {
        events: [
          { type: 'click', unitId: 'u-1', route: 'recommend', value: 1, eventId: givenId, ts: 1_700_000_000_000 },
          { type: 'Click!', unitId: 'u-1' },
          { type: 'dwell', unitId: 'u-2', value: 12.5, attributes: { country: 'JP' } },
          { type: 'exposure', unitId: 'u-3' },
          { type: 'click' },
          { type: 'click', unitId: 'u-4', route: 'nope' },
          'not an object',
          { type: 'click', unitId: 'qa-user', route: 'recommend', extra: 1 },
          { type: 'click', unitId: 'qa-user', route: 'recommend' },
          { type: 'shadow', unitId: 'u-5' },
        ],
      });
      expect(res.status).toBe(202);
      const body = await res.json();
      expect(body.accepted).toBe(3);
      expect(body.rejected.map((r: { index: number }) => r.index)).toEqual([1, 3, 4, 5, 6, 7, 9]);
      const byIndex = Object.fromEntries(body.rejected.map((r: { index: number; reason: string }) => [r.index, r.reason]));
      expect(byIndex[1]).toMatch(/^events\.1\.type:/);
      expect(byIndex[3]).toMatch(/^events\.3\.type: exposure events are written by the gateway/);
      expect(byIndex[4]).toMatch(/^events\.4\.unitId:/);
      expect(byIndex[5]).toBe('events.5.route: unknown route "nope"');
      expect(byIndex[7]).toMatch(/^events\.7/);
      expect(byIndex[7]).toMatch(/extra/);
      expect(byIndex[9]).toMatch(/^events\.9\.type: shadow events are written by the gateway/);

      const events = await logged();
      expect(events.map((e) => e.type).sort()).toEqual(['click', 'click', 'dwell']);
      const of = (unit: string) => events.find((e) => e.unitId === unit)!;
      const [click, dwell, qa] = [of('u-1'), of('u-2'), of('qa-user')];
      expect(click).toMatchObject({ eventId: givenId, ts: 1_700_000_000_000, unitId: 'u-1', route: 'recommend', value: 1 });
      const clickWant = assign(config, 'recommend', 'u-1', {}).assignments.map(({ experiment, variant }) => ({ experiment, variant }));
      expect(click.assignments).toEqual(clickWant);
      // No route: tagged from every route with running experiments.
      expect(dwell.eventId).toMatch(/^[0-9a-f-]{36}$/);
      expect(dwell.ts).toBeGreaterThan(1_700_000_000_000);
      const dwellWant = ['recommend', 'search'].flatMap((r) =>
        assign(config, r, 'u-2', { country: 'JP' }).assignments.map(({ experiment, variant }) => ({ experiment, variant })),
      );
      expect(dwell.assignments).toEqual(dwellWant);
      expect(dwell.assignments.map((a) => a.experiment)).toEqual(['jp-only', 'ranker', 'speller']);
      // Forced assignments stay out, as in exposures.
      expect(qa.assignments).toEqual([]);
    });

    it(`refuses more than ${MAX_EVENTS_PER_CALL} events in one call, naming events`, async () => {
      await logged();
      const events = Array.from({ length: MAX_EVENTS_PER_CALL + 1 }, (_, i) => ({ type: 'click', unitId: `u-${i}` }));
      const res = await post('/v1/events', { events });
      expect(res.status).toBe(400);
      expect((await res.json()).error.details.fields[0].path).toBe('events');
      expect(await logged()).toEqual([]);
      const ok = await post('/v1/events', { events: events.slice(0, MAX_EVENTS_PER_CALL) });
      expect((await ok.json()).accepted).toBe(MAX_EVENTS_PER_CALL);
      expect(await logged()).toHaveLength(MAX_EVENTS_PER_CALL);
    });

    it('rejects a body without an events array', async () => {
      const res = await post('/v1/events', { event: [] });
      expect(res.status).toBe(400);
      expect((await res.json()).error.message).toMatch(/events/);
    });
  });
});
