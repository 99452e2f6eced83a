import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameReader, MAX_FRAME_BYTES, encodeEvents, encodeFlush } from '../src/cluster/event-frames.ts';

type Item = { kind: 'events'; keys: string[]; values: string[] } | { kind: 'flush'; id: number };
type Seen = { key: string; value: string } | { flush: number };

const text = fc.string({ unit: 'grapheme', maxLength: 40 });
const batch = fc.array(fc.tuple(text, text), { minLength: 1, maxLength: 6 }).map(
  (pairs): Item => ({ kind: 'events', keys: pairs.map(([k]) => k), values: pairs.map(([, v]) => v) }),
);
const flush = fc.nat({ max: 0xfffffffe }).map((id): Item => ({ kind: 'flush', id }));

function reader(seen: Seen[]): FrameReader {
  return new FrameReader({ event: (key, value) => seen.push({ key, value }), flush: (id) => seen.push({ flush: id }) });
}

describe('event frames on a worker’s event pipe', () => {
  it('come out as they went in, in order, however the stream is cut into chunks', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(batch, flush), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (items, cuts) => {
        const stream = Buffer.concat(items.map((i) => (i.kind === 'events' ? encodeEvents(i.keys, i.values) : encodeFlush(i.id))));
        const seen: Seen[] = [];
        const r = reader(seen);
        const points = [...new Set(cuts.map((c) => (stream.length === 0 ? 0 : c % stream.length)))].sort((a, b) => a - b);
        let from = 0;
        for (const p of [...points, stream.length]) {
          r.push(stream.subarray(from, p));
          from = p;
        }
        const expected: Seen[] = items.flatMap((i): Seen[] => (i.kind === 'events' ? i.keys.map((key, n) => ({ key, value: i.values[n]! })) : [{ flush: i.id }]));
        expect(seen).toEqual(expected);
        expect(r.pendingBytes).toBe(0);
      }),
    );
  });

  it('fed one byte at a time, hold a frame back until its last byte and report what is pending', () => {
    const frame = encodeEvents(['ユーザー-1'], ['{"type":"exposure","unitId":"ユーザー-1"}']);
    const seen: Seen[] = [];
    const r = reader(seen);
    for (let i = 0; i < frame.length - 1; i++) r.push(frame.subarray(i, i + 1));
    expect(seen).toEqual([]);
    expect(r.pendingBytes).toBe(frame.length - 1);
    r.push(frame.subarray(frame.length - 1));
    expect(seen).toEqual([{ key: 'ユーザー-1', value: '{"type":"exposure","unitId":"ユーザー-1"}' }]);
    expect(r.pendingBytes).toBe(0);
  });

  it('refuse a frame longer than any event, rather than wait for it forever', () => {
    const header = Buffer.alloc(8);
    header.writeUInt32LE(4, 0);
    header.writeUInt32LE(MAX_FRAME_BYTES, 4);
    expect(() => reader([]).push(header)).toThrow(/not a stream of event frames/);
  });
});
