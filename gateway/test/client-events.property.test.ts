import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientEvent } from '@bunryu/core';
import { startReadyGateway, type ReadyGateway } from './support/ready-gateway.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';

/**
 * `POST /v1/events` with batches of valid events and events with one thing broken: every event
 * is either accepted or rejected with its own index and a reason naming its field, the valid
 * ones are all kept, and exactly the accepted ones reach the event log, once each.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const validArb = fc.record(
  {
    eventId: fc.uuid().map(() => randomUUID()),
    type: fc.constantFrom('click', 'purchase', 'dwell_time', 'add_to_cart'),
    ts: fc.integer({ min: 0, max: 4_000_000_000_000 }),
    unitId: fc.stringMatching(/^[A-Za-z0-9._@-]{1,40}$/),
    route: fc.constantFrom('recommend', 'search'),
    requestId: fc.stringMatching(/^[a-z0-9-]{1,40}$/),
    value: fc.double({ min: -1e6, max: 1e6, noNaN: true }),
    attributes: fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/), fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean()), { maxKeys: 3 }),
  },
  { requiredKeys: ['eventId', 'type', 'unitId'] },
);

const oddValue: fc.Arbitrary<Json> = fc.constantFrom<Json>(null, true, 0, -1, 1.5, '', 'x'.repeat(300), 'Not A Type', 'exposure', [], {}, { a: [1] }, 'nope');

const brokenArb = fc.tuple(validArb, fc.constantFrom('eventId', 'type', 'ts', 'unitId', 'route', 'requestId', 'value', 'attributes', 'extra', '(not an object)'), oddValue).map(
  ([event, field, value]): Json => (field === '(not an object)' ? value : { ...(event as Record<string, Json>), [field]: field === 'extra' ? 1 : value }),
);

const batchArb = fc.array(fc.oneof(validArb.map((e) => ({ valid: true, event: e as Json })), brokenArb.map((e) => ({ valid: false, event: e }))), { minLength: 1, maxLength: 40 });

describe('/v1/events with valid and broken events mixed', () => {
  let ready: ReadyGateway;

  beforeAll(async () => {
    const routes = [route('recommend', 'http://127.0.0.1:9'), route('search', 'http://127.0.0.1:9')];
    ready = await startReadyGateway(snapshot(1, routes, [experiment('ranker', 'recommend'), experiment('speller', 'search')]));
  });

  afterAll(() => ready?.close());

  it('accepts each valid event once, and rejects each broken one by index with its field', async () => {
    await fc.assert(
      fc.asyncProperty(batchArb, async (batch) => {
        const { gw, tap } = ready;
        await tap.drain();
        const res = await fetch(`${gw.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events: batch.map((b) => b.event) }) });
        expect(res.status).toBe(202);
        const answer = (await res.json()) as { accepted: number; rejected: { index: number; reason: string }[] };
        const rejected = answer.rejected.map((r) => r.index);
        expect(answer.accepted + rejected.length).toBe(batch.length);
        expect(rejected).toEqual([...new Set(rejected)].sort((a, b) => a - b));
        for (const r of answer.rejected) expect(r.reason).toMatch(new RegExp(`^events\\.${r.index}(\\.[A-Za-z0-9_]+)*: .+`));
        batch.forEach((b, i) => {
          // What the schema takes is kept; broken ones may still be valid (a route removed, say), never the other way.
          const valid = ClientEvent.safeParse(b.event).success;
          if (b.valid) expect(valid).toBe(true);
          if (!valid) expect(rejected).toContain(i);
        });
        const logged = await tap.drain();
        expect(logged).toHaveLength(answer.accepted);
        const kept = batch.filter((_, i) => !rejected.includes(i)).map((b) => (b.event as { eventId?: unknown }).eventId);
        expect(logged.map((e) => e.eventId).filter((id) => kept.includes(id)).sort()).toEqual(kept.filter((id): id is string => typeof id === 'string').sort());
      }),
      { numRuns: 60 },
    );
  });
});
