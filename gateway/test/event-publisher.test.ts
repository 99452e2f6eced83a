import { randomUUID } from 'node:crypto';
import { appendFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Event } from '@bunryu/core';
import type { LogRecord } from '@bunryu/event-log';
import { EventPublisher } from '../src/events/event-publisher.ts';
import { SpillLog } from '../src/events/spill-log.ts';
import { tempDir, until } from './support/gateway.ts';
import { MemoryProducer } from './support/memory-producer.ts';

/** An event whose ts is its place in the sequence published. */
const ev = (seq: number): Event => ({ eventId: randomUUID(), type: 'click', ts: seq, unitId: 'u', assignments: [] });
const seqs = (p: MemoryProducer) => p.events<Event>().map((e) => e.ts);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
/** Each event once, in the order of its first delivery: what the aggregator keeps (it drops copies by eventId). */
const firstSeen = (p: MemoryProducer) => {
  const seen = new Set<string>();
  return p.events<Event>().filter((e) => !seen.has(e.eventId) && seen.add(e.eventId)).map((e) => e.ts);
};

async function publisher(producer: MemoryProducer, dir: string, options: Partial<ConstructorParameters<typeof EventPublisher>[0]> = {}) {
  const spill = await SpillLog.open(dir);
  return new EventPublisher({ producer, spill, queueLimit: 10_000, batchSize: 100, flushIntervalMs: 5, retryMinMs: 20, retryMaxMs: 50, ...options });
}

describe('EventPublisher', () => {
  it('delivers everything in order, in batches, keyed as given', async () => {
    const producer = new MemoryProducer();
    const pub = await publisher(producer, await tempDir());
    for (const seq of range(0, 1000)) pub.publish(`unit-${seq % 7}`, ev(seq));
    await pub.flush();
    expect(seqs(producer)).toEqual(range(0, 1000));
    expect(producer.records[8]!.key).toBe('unit-1');
    expect(producer.appends).toBeLessThanOrEqual(20);
    expect(pub.stats()).toMatchObject({ queued: 0, published: 1000, spilled: 0, mode: 'memory' });
    await pub.close();
  });

  it('gathers a trickle of events into one append per tick instead of one per event', async () => {
    const producer = new MemoryProducer();
    const original = producer.append.bind(producer);
    // An append with a fixed cost, like an fsync.
    producer.append = async (records: readonly LogRecord[]) => {
      await new Promise((r) => setTimeout(r, 5));
      return original(records);
    };
    const pub = await publisher(producer, await tempDir(), { flushIntervalMs: 100 });
    const started = Date.now();
    for (const seq of range(0, 60)) {
      pub.publish('u', ev(seq));
      await new Promise((r) => setTimeout(r, 2));
    }
    const ticks = Math.ceil((Date.now() - started) / 100) + 1;
    await until(() => pub.stats().published === 60, 5000, 'the events');
    expect(producer.appends).toBeLessThanOrEqual(ticks + 1);
    expect(seqs(producer)).toEqual(range(0, 60));
    await pub.close();
  });

  it('spills to disk while the log is down and replays in order, exactly once, before newer events', async () => {
    const producer = new MemoryProducer();
    const dir = await tempDir();
    const pub = await publisher(producer, dir);
    for (const seq of range(0, 100)) pub.publish('u', ev(seq));
    await pub.flush();
    producer.down = true;
    for (const seq of range(100, 600)) {
      pub.publish(`u${seq % 3}`, ev(seq));
      if (seq % 50 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await pub.flush();
    const during = pub.stats();
    expect(during.mode).toBe('spill');
    expect(during.spilled).toBe(500);
    expect(during.spillPending).toBe(500);
    expect(during.failures).toBeGreaterThan(0);
    expect(seqs(producer)).toEqual(range(0, 100));
    expect((await readdir(join(dir))).length).toBeGreaterThan(0);

    producer.down = false;
    for (const seq of range(600, 700)) pub.publish('u', ev(seq));
    await until(() => pub.stats().mode === 'memory' && pub.stats().queued === 0, 5000, 'recovery');
    await pub.flush();
    expect(seqs(producer)).toEqual(range(0, 700));
    expect(pub.stats()).toMatchObject({ spillPending: 0, published: 700 });
    expect(await readdir(dir)).toEqual([]);
    await pub.close();
  });

  it('spills when the queue outgrows its limit behind a slow log, and never drops', async () => {
    const producer = new MemoryProducer();
    let slow = true;
    const original = producer.append.bind(producer);
    producer.append = async (records: readonly LogRecord[]) => {
      if (slow) await new Promise((r) => setTimeout(r, 30));
      return original(records);
    };
    const pub = await publisher(producer, await tempDir(), { queueLimit: 50, batchSize: 10 });
    for (const seq of range(0, 400)) pub.publish('u', ev(seq));
    await until(() => pub.stats().spilled > 0, 5000, 'a spill');
    slow = false;
    await until(() => firstSeen(producer).length === 400, 5000, 'every event');
    // A batch whose append was in flight when the queue overflowed went to disk as well: at least once.
    expect(firstSeen(producer)).toEqual(range(0, 400));
    await pub.close();
  });

  it('spills while a slow append is still in flight, so memory stays bounded, and delivers every event after', async () => {
    const producer = new MemoryProducer();
    let slowMs = 2000;
    const original = producer.append.bind(producer);
    producer.append = async (records: readonly LogRecord[]) => {
      await new Promise((r) => setTimeout(r, slowMs));
      return original(records);
    };
    const oneEvent = JSON.stringify(ev(0)).length;
    const pub = await publisher(producer, await tempDir(), { queueLimit: 100_000, queueBytesLimit: 50 * oneEvent, batchSize: 10 });
    const started = Date.now();
    // A full batch starts the (slow) append of the first ten.
    for (const seq of range(0, 10)) pub.publish('u', ev(seq));
    await until(() => pub.stats().queued === 0, 1000, 'the first append to start');
    for (const seq of range(10, 400)) pub.publish('u', ev(seq));
    await until(() => pub.stats().spilled > 0, 1500, 'a spill while the append is in flight');
    expect(Date.now() - started).toBeLessThan(slowMs);
    expect(pub.stats().queued).toBeLessThanOrEqual(60);
    slowMs = 0;
    await until(() => firstSeen(producer).length === 400, 10_000, 'every event');
    expect(firstSeen(producer)).toEqual(range(0, 400));
    // The batch in flight when the queue overflowed lands twice (its late append and the replay),
    // but was published once: the counter says what clients gave, not what the log holds.
    await until(() => producer.records.length === 410, 5000, 'the late append of the first batch');
    expect(pub.stats().published).toBe(400);
    await pub.close();
  });

  it('spills what is queued on close while the log is down, and the next start replays it first', async () => {
    const producer = new MemoryProducer();
    const dir = await tempDir();
    const first = await publisher(producer, dir, { flushIntervalMs: 60_000 });
    producer.down = true;
    for (const seq of range(0, 250)) first.publish('u', ev(seq));
    await first.close();
    expect(producer.records).toEqual([]);

    producer.down = false;
    const second = await publisher(producer, dir);
    expect(second.stats()).toMatchObject({ mode: 'spill', spillPending: 250 });
    for (const seq of range(250, 300)) second.publish('u', ev(seq));
    await until(() => second.stats().published === 300, 5000, 'the replay');
    expect(seqs(producer)).toEqual(range(0, 300));
    await second.close();
  });

  it('flushes into the log on close when it answers', async () => {
    const producer = new MemoryProducer();
    const pub = await publisher(producer, await tempDir(), { flushIntervalMs: 60_000 });
    for (const seq of range(0, 30)) pub.publish('u', ev(seq));
    await pub.close();
    expect(seqs(producer)).toEqual(range(0, 30));
  });
});

describe('SpillLog', () => {
  it('cuts a torn last line left by a crash and reads the rest back in order across segments', async () => {
    const dir = await tempDir();
    const log = await SpillLog.open(dir, { segmentBytes: 200 });
    const records = range(0, 20).map((i) => ({ key: `k\t"${i}"`, value: JSON.stringify({ i, text: 'line\nbreak' }) }));
    for (let i = 0; i < 20; i += 5) await log.append(records.slice(i, i + 5));
    await log.close();
    const segments = (await readdir(dir)).sort();
    expect(segments.length).toBeGreaterThan(1);
    await appendFile(join(dir, segments.at(-1)!), '"torn"\t{"i":');

    const reopened = await SpillLog.open(dir, { segmentBytes: 200 });
    expect(reopened.pending).toBe(20);
    const back: LogRecord[] = [];
    for (let batch = await reopened.read(3); batch; batch = await reopened.read(3)) {
      back.push(...batch.records);
      await batch.commit();
    }
    expect(back).toEqual(records);
    expect(reopened.pending).toBe(0);
    expect(await readdir(dir)).toEqual([]);
  });

  it('reads a batch again when it was not committed', async () => {
    const log = await SpillLog.open(await tempDir());
    await log.append([{ key: 'a', value: '1' }, { key: 'b', value: '2' }]);
    const first = await log.read(1);
    expect(first!.records).toEqual([{ key: 'a', value: '1' }]);
    const again = await log.read(1);
    expect(again!.records).toEqual([{ key: 'a', value: '1' }]);
    await again!.commit();
    expect((await log.read(5))!.records).toEqual([{ key: 'b', value: '2' }]);
  });
});
