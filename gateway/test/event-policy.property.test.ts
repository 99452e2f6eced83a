import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventDeclaration } from '@bunryu/core';
import { startReadyGateway, type ReadyGateway } from './support/ready-gateway.ts';
import { route, snapshot } from './support/snapshots.ts';

/**
 * SPEC §16 at the gateway: batches mixing events that match the approved catalogue, events that
 * miss it in one known way, and events the base schema already refuses. Each generated event
 * carries what it is, so the expected answer comes from the generator, not from the code under
 * test: under `open` the catalogue is ignored; under `warn` mismatches are kept and marked;
 * under `strict` each is rejected by its index with the field at fault. Mismatches are counted
 * per type in /metrics.
 */

const T = '2026-01-01T00:00:00.000Z';
function declaration(type: string, approved: EventDeclaration['approved']): EventDeclaration {
  return { type, description: `${type} events`, owner: 'growth', attributes: approved?.attributes ?? {}, status: approved ? 'approved' : 'proposed', version: 1, proposedBy: 'pm', updatedAt: T, approved };
}
const EVENTS: Record<string, EventDeclaration> = {
  click: declaration('click', {
    description: 'a click',
    owner: 'growth',
    attributes: { position: { type: 'number', required: true }, surface: { type: 'string', enum: ['home', 'search'] }, promoted: { type: 'boolean' } },
  }),
  dwell: declaration('dwell', { description: 'time on page', owner: 'growth', attributes: {}, value: { unit: 'seconds' } }),
  // Proposed, never approved: not yet a contract, so undeclared to the gateway.
  purchase: declaration('purchase', null),
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** `mismatch`: the verdict and field the catalogue check must report; `broken`: the base schema refuses it. */
interface Case {
  event: Json;
  kind: 'ok' | 'mismatch' | 'broken';
  verdict?: 'undeclared' | 'invalid';
  field?: string;
}

const unitId = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
const position = fc.integer({ min: 0, max: 50 });
const clickAttrs = fc.record({ position, surface: fc.constantFrom('home', 'search'), promoted: fc.boolean() }, { requiredKeys: ['position'] });

const okArb: fc.Arbitrary<Case> = fc.oneof(
  fc.record({ unitId, attributes: clickAttrs }).map((e) => ({ kind: 'ok' as const, event: { type: 'click', eventId: randomUUID(), ...e } })),
  fc.record({ unitId, value: fc.double({ min: 0, max: 1e4, noNaN: true }) }, { requiredKeys: ['unitId'] }).map((e) => ({ kind: 'ok' as const, event: { type: 'dwell', eventId: randomUUID(), ...e } })),
);

const mismatchArb: fc.Arbitrary<Case> = fc.oneof(
  fc.record({ unitId, type: fc.constantFrom('clik', 'purchase', 'add_to_cart') }).map(({ unitId: u, type }) => ({ kind: 'mismatch' as const, verdict: 'undeclared' as const, field: 'type', event: { type, unitId: u, eventId: randomUUID() } })),
  fc.record({ unitId, surface: fc.constantFrom('home', 'search') }).map((e) => ({ kind: 'mismatch' as const, verdict: 'invalid' as const, field: 'attributes.position', event: { type: 'click', eventId: randomUUID(), unitId: e.unitId, attributes: { surface: e.surface } } })),
  fc.record({ unitId, p: fc.string({ maxLength: 4 }) }).map((e) => ({ kind: 'mismatch' as const, verdict: 'invalid' as const, field: 'attributes.position', event: { type: 'click', eventId: randomUUID(), unitId: e.unitId, attributes: { position: e.p } } })),
  fc.record({ unitId, position, s: fc.constantFrom('hmoe', 'cart', '') }).map((e) => ({ kind: 'mismatch' as const, verdict: 'invalid' as const, field: 'attributes.surface', event: { type: 'click', eventId: randomUUID(), unitId: e.unitId, attributes: { position: e.position, surface: e.s } } })),
  fc.record({ unitId, position }).map((e) => ({ kind: 'mismatch' as const, verdict: 'invalid' as const, field: 'attributes.colour', event: { type: 'click', eventId: randomUUID(), unitId: e.unitId, attributes: { position: e.position, colour: 'red' } } })),
  fc.record({ unitId, position, v: fc.integer() }).map((e) => ({ kind: 'mismatch' as const, verdict: 'invalid' as const, field: 'value', event: { type: 'click', eventId: randomUUID(), unitId: e.unitId, value: e.v, attributes: { position: e.position } } })),
  fc.record({ unitId }).map((e) => ({ kind: 'mismatch' as const, verdict: 'invalid' as const, field: 'attributes.x', event: { type: 'dwell', eventId: randomUUID(), unitId: e.unitId, attributes: { x: 1 } } })),
);

const brokenArb: fc.Arbitrary<Case> = fc.constantFrom<Json>(null, 'click', { type: 'Click', unitId: 'u' }, { type: 'click', unitId: '' }, { type: 'click', unitId: 'u', attributes: { position: [1] } }).map((event) => ({ kind: 'broken' as const, event }));

const batchArb = fc.array(fc.oneof({ arbitrary: okArb, weight: 3 }, { arbitrary: mismatchArb, weight: 3 }, { arbitrary: brokenArb, weight: 1 }), { minLength: 1, maxLength: 30 });

describe.each(['open', 'warn', 'strict'] as const)('BUNRYU_EVENT_POLICY=%s', (policy) => {
  let ready: ReadyGateway;
  const expectedCounts = new Map<string, number>();

  beforeAll(async () => {
    ready = await startReadyGateway({ ...snapshot(1, [route('recommend', 'http://127.0.0.1:9')]), events: EVENTS }, { BUNRYU_EVENT_POLICY: policy });
  });
  afterAll(() => ready?.close());

  it('accepts or rejects every event by index with its field, exactly as the policy says', async () => {
    await fc.assert(
      fc.asyncProperty(batchArb, async (batch) => {
        const { gw, tap } = ready;
        await tap.drain();
        const res = await fetch(`${gw.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events: batch.map((c) => c.event) }) });
        expect(res.status).toBe(202);
        const answer = (await res.json()) as { accepted: number; rejected: { index: number; reason: string; fields: { path: string }[] }[] };
        const byIndex = new Map(answer.rejected.map((r) => [r.index, r]));
        const expectedKept: Case[] = [];
        batch.forEach((c, i) => {
          const rejected = byIndex.get(i);
          if (c.kind === 'broken') {
            expect(rejected, `event ${i} is broken`).toBeDefined();
            return;
          }
          if (c.kind === 'mismatch' && policy === 'strict') {
            expect(rejected?.fields, `event ${i}: ${JSON.stringify(c.event)}`).toEqual([{ path: `events.${i}.${c.field}`, message: expect.any(String) }]);
            expect(rejected!.reason).toMatch(new RegExp(`^events\\.${i}\\.${c.field!.replace('.', '\\.')}: `));
          } else {
            expect(rejected, `event ${i} must be kept: ${JSON.stringify(c.event)}`).toBeUndefined();
            expectedKept.push(c);
          }
          if (c.kind === 'mismatch' && policy !== 'open') {
            const key = `${(c.event as { type: string }).type}|${c.verdict}|${policy === 'warn' ? 'accepted' : 'rejected'}`;
            expectedCounts.set(key, (expectedCounts.get(key) ?? 0) + 1);
          }
        });
        expect(answer.accepted).toBe(expectedKept.length);
        const logged = await tap.drain();
        const byId = new Map(logged.map((e) => [e.eventId, e]));
        expect(logged).toHaveLength(expectedKept.length);
        for (const c of expectedKept) {
          const e = byId.get((c.event as { eventId: string }).eventId);
          expect(e).toBeDefined();
          // Only `warn` marks what it kept despite a mismatch.
          expect(e!.catalogue).toBe(policy === 'warn' && c.kind === 'mismatch' ? c.verdict : undefined);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('counts the mismatches per type, verdict and outcome in /metrics', async () => {
    const text = await (await fetch(`${ready.gw.url}/metrics`)).text();
    const seen = new Map<string, number>();
    for (const m of text.matchAll(/^bunryu_gateway_catalogue_mismatches_total\{type="([^"]+)",verdict="([^"]+)",outcome="([^"]+)"[^}]*\} (\d+)$/gm)) {
      seen.set(`${m[1]}|${m[2]}|${m[3]}`, Number(m[4]));
    }
    expect(seen).toEqual(expectedCounts);
    if (policy !== 'open') expect(expectedCounts.size).toBeGreaterThan(0);
  });
});
