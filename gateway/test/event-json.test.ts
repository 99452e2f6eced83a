import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Event, exposureEvent, type Assignment, type ExposureContext } from '@bunryu/core';
import { asciiJson } from '@bunryu/core';
import { eventJson, exposureJson, shadowJson } from '../src/events/event-json.ts';

const text = fc.string({ unit: 'binary', maxLength: 20 });
const finite = fc.double({ noNaN: true, noDefaultInfinity: true });
const event = fc.record(
  {
    eventId: fc.uuid(),
    type: fc.constantFrom('exposure', 'click', 'dwell'),
    ts: fc.nat(),
    unitId: text,
    route: text,
    requestId: text,
    assignments: fc.array(fc.record({ experiment: fc.constantFrom('a', 'b', 'c"q', 'd\\'), variant: fc.constantFrom('x', 'y', 'z\n') }), { maxLength: 5 }),
    value: finite,
    latencyMs: finite,
    status: fc.integer({ min: 0, max: 999 }),
    fallback: fc.constantFrom('route' as const, 'model' as const),
    attributes: fc.dictionary(text, fc.oneof(text, finite, fc.boolean()), { maxKeys: 3 }),
    itemId: text,
    interleaving: fc.record({ experiment: fc.constantFrom('a', 'b'), items: fc.array(text, { maxLength: 4 }), teams: fc.array(fc.constantFrom('x', 'y'), { maxLength: 4 }) }),
    shadow: fc.record({
      compare: fc.constantFrom('predictions', 'items'),
      primary: fc.record({ params: fc.dictionary(text, text, { maxKeys: 2 }), status: fc.integer({ min: 0, max: 999 }), latencyMs: finite, output: fc.array(finite, { maxLength: 3 }) }),
      shadow: fc.record({ params: fc.dictionary(text, text, { maxKeys: 2 }), status: fc.integer({ min: 0, max: 999 }), latencyMs: finite }),
    }),
  },
  { requiredKeys: ['eventId', 'type', 'ts', 'unitId', 'assignments'] },
) as fc.Arbitrary<Event>;

describe('eventJson', () => {
  it('reads back as the same event as JSON.stringify writes', () => {
    fc.assert(
      fc.property(event, (e) => {
        expect(JSON.parse(eventJson(e))).toEqual(JSON.parse(JSON.stringify(e)));
      }),
      { numRuns: 500 },
    );
  });

  it('writes exposures as core exposureEvent builds them, forced assignments left out', () => {
    const assignment = fc.record({ experiment: fc.constantFrom('a', 'b', 'c"q'), variant: fc.constantFrom('x', 'y\\'), forced: fc.boolean() }) as fc.Arbitrary<Assignment>;
    const ctx = fc.record(
      {
        unitId: text,
        route: text,
        requestId: text,
        ts: fc.nat(),
        latencyMs: finite,
        status: fc.integer({ min: 0, max: 999 }),
        fallback: fc.constantFrom('route', 'model'),
        attributes: fc.dictionary(text, fc.oneof(text, finite, fc.boolean()), { maxKeys: 3 }),
        interleaving: fc.record({ experiment: fc.constantFrom('a', 'b'), items: fc.array(text, { maxLength: 4 }), teams: fc.array(fc.constantFrom('x', 'y'), { maxLength: 4 }) }),
      },
      { requiredKeys: ['unitId', 'route', 'requestId', 'ts'] },
    ) as fc.Arbitrary<ExposureContext>;
    fc.assert(
      fc.property(fc.array(assignment, { maxLength: 6 }), ctx, fc.uuid(), (assignments, c, id) => {
        const event = exposureEvent(assignments, c, id);
        // The assignments as assignForwarding serializes them (its own property test holds that equal).
        const json = exposureJson(event === null ? null : JSON.stringify(event.assignments), c, id);
        if (event === null) expect(json).toBeNull();
        else expect(JSON.parse(json!)).toEqual(JSON.parse(JSON.stringify(event)));
      }),
      { numRuns: 500 },
    );
  });

  it('writes a schema-valid exposure', () => {
    const e: Event = { eventId: '7c9e6679-7425-40de-944b-e07fc1f90ae7', type: 'exposure', ts: 1, unitId: 'u', route: 'r', requestId: 'q', assignments: [{ experiment: 'e', variant: 'v' }], latencyMs: 1.5, status: 200 };
    expect(Event.parse(JSON.parse(eventJson(e)))).toEqual(e);
  });

  it('writes a shadow pair from JSON pieces as the same event', () => {
    const side = fc.record(
      { params: fc.dictionary(text, fc.oneof(text, finite, fc.boolean()), { maxKeys: 3 }), status: fc.integer({ min: 0, max: 999 }), latencyMs: finite, output: fc.jsonValue() },
      { requiredKeys: ['params', 'status', 'latencyMs'] },
    );
    const pair = fc.record({ eventId: fc.uuid(), ts: fc.nat(), unitId: text, route: text, requestId: text, compare: text, primary: side, shadow: side });
    fc.assert(
      fc.property(pair, (p) => {
        const pieces = (s: typeof p.primary) => ({
          // Params as the gateway forwards them (ASCII), the output as JSON.stringify writes it.
          paramsJson: asciiJson(s.params),
          status: s.status,
          latencyMs: s.latencyMs,
          ...(s.output === undefined ? {} : { outputJson: JSON.stringify(s.output) }),
        });
        const event: Event = {
          eventId: p.eventId,
          type: 'shadow',
          ts: p.ts,
          unitId: p.unitId,
          route: p.route,
          requestId: p.requestId,
          assignments: [],
          shadow: { compare: p.compare, primary: p.primary, shadow: p.shadow },
        };
        const json = shadowJson({ ...p, primary: pieces(p.primary), shadow: pieces(p.shadow) });
        expect(JSON.parse(json)).toEqual(JSON.parse(eventJson(event)));
      }),
      { numRuns: 500 },
    );
  });
});
