import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Event } from '@bunryu/core';
import { eventJson } from '../src/events/event-json.ts';

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
    attributes: fc.dictionary(text, fc.oneof(text, finite, fc.boolean()), { maxKeys: 3 }),
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

  it('writes a schema-valid exposure', () => {
    const e: Event = { eventId: '7c9e6679-7425-40de-944b-e07fc1f90ae7', type: 'exposure', ts: 1, unitId: 'u', route: 'r', requestId: 'q', assignments: [{ experiment: 'e', variant: 'v' }], latencyMs: 1.5, status: 200 };
    expect(Event.parse(JSON.parse(eventJson(e)))).toEqual(e);
  });
});
