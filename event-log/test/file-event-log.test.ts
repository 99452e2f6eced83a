import { spawn } from 'node:child_process';
import { appendFile, readdir, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { murmur3 } from '@bunryu/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createFileEventLog, type EventLogConsumer, type EventLogProducer } from '../src/index.ts';
import { byKey, collect, makeRecords, tempDir, waitFor } from './support/event-log-harness.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const fixture = fileURLToPath(new URL('./support/append-records.ts', import.meta.url));

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  cleanups = [];
});

async function logDir(): Promise<string> {
  const temp = await tempDir();
  cleanups.push(() => temp.remove());
  return temp.dir;
}

function track<T extends EventLogProducer | EventLogConsumer>(thing: T): T {
  cleanups.push(() => thing.close());
  return thing;
}

function segmentsOf(dir: string, partition: number): Promise<string[]> {
  return readdir(join(dir, 'events', String(partition))).then((names) => names.filter((n) => n.endsWith('.log')).sort());
}

/** The file the records of `key` go to while the log has one segment per partition. */
const firstSegment = (dir: string, key: string) => join(dir, 'events', String(murmur3(key) % 4), '00000000000000000000.log');

describe('embedded event log', () => {
  it('delivers records appended by a producer in another process', async () => {
    const dir = await logDir();
    const log = createFileEventLog({ dir, topic: 'events', pollIntervalMs: 50 });
    const consumer = track(log.consumer({ group: 'aggregator' }));
    const got = await collect(consumer);

    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir, 'events', '3000', '12'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);

    await waitFor('3000 records from the child', () => got.records.length >= 3000);
    await waitFor('the commit', async () => (await consumer.lag()) === 0);
    expect(got.records).toHaveLength(3000);
    expect(byKey(got.records)).toEqual(byKey(makeRecords(3000, 17, 'child')));
  });

  it('cuts a torn write off the end of a segment and appends after the last whole record', async () => {
    const dir = await logDir();
    const log = createFileEventLog({ dir, topic: 'events', pollIntervalMs: 20 });
    const records = makeRecords(5, 1, 'torn');
    const first = log.producer();
    await first.append(records);
    await first.close();
    const segment = firstSegment(dir, records[0]!.key);
    const whole = (await stat(segment)).size;
    // A crash in the middle of a write: a header announcing 200 bytes, then only 10 of them.
    const torn = Buffer.alloc(18, 0x61);
    torn.writeUInt32BE(200, 0);
    await appendFile(segment, torn);

    const consumer = track(log.consumer({ group: 'aggregator' }));
    const got = await collect(consumer);
    await waitFor('the whole records', async () => got.records.length >= 5 && (await consumer.lag()) === 0);

    const second = track(log.producer());
    const after = { key: records[0]!.key, value: 'after the crash' };
    await second.append([after]);
    await waitFor('the record after the crash', () => got.records.length >= 6);

    expect(got.records.map((r) => r.value)).toEqual([...records, after].map((r) => r.value));
    expect(got.records.map((r) => r.offset)).toEqual(['0', '1', '2', '3', '4', '5']);
    expect((await stat(segment)).size).toBe(whole + (whole / 5 - records[0]!.value.length + after.value.length));
  });

  it('keeps what was appended and committed across restarts of producer and consumer', async () => {
    const dir = await logDir();
    const before = makeRecords(50, 7, 'before');
    const after = makeRecords(50, 7, 'after');
    const p1 = createFileEventLog({ dir, topic: 'events' }).producer();
    await p1.append(before);
    await p1.close();

    const c1 = createFileEventLog({ dir, topic: 'events', pollIntervalMs: 20 }).consumer({ group: 'aggregator' });
    const first = await collect(c1);
    await waitFor('the first 50', async () => first.records.length >= 50 && (await c1.lag()) === 0);
    await c1.close();

    const p2 = track(createFileEventLog({ dir, topic: 'events' }).producer());
    await p2.append(after);
    const c2 = track(createFileEventLog({ dir, topic: 'events', pollIntervalMs: 20 }).consumer({ group: 'aggregator' }));
    const second = await collect(c2);
    await waitFor('the next 50', async () => second.records.length >= 50 && (await c2.lag()) === 0);

    expect(byKey(first.records)).toEqual(byKey(before));
    expect(byKey(second.records)).toEqual(byKey(after));
    // Offsets continue where the first producer stopped: per partition, 0..n-1 without gaps.
    const all = [...first.records, ...second.records];
    for (let p = 0; p < 4; p++) {
      const offsets = all.filter((r) => r.partition === p).map((r) => Number(r.offset));
      expect(offsets).toEqual(offsets.map((_, i) => i));
    }
  });

  it('rolls segments and deletes them only once every known group has committed them', async () => {
    const dir = await logDir();
    const log = createFileEventLog({ dir, topic: 'events', segmentBytes: 2048, retentionIntervalMs: 0, pollIntervalMs: 20 });
    const producer = track(log.producer());
    const records = makeRecords(400, 97, 'roll', 40);
    for (let i = 0; i < records.length; i += 20) await producer.append(records.slice(i, i + 20));
    const rolled = await Promise.all([0, 1, 2, 3].map((p) => segmentsOf(dir, p)));
    expect(rolled.every((names) => names.length > 2)).toBe(true);

    // Group b is known (it ran) but has read nothing: nothing may be deleted.
    const b = log.consumer({ group: 'b' });
    await b.run({
      async eachBatch() {
        throw new Error('not yet');
      },
    });
    const a = track(log.consumer({ group: 'a' }));
    const gotA = await collect(a);
    await waitFor('group a', async () => gotA.records.length >= 400 && (await a.lag()) === 0);
    expect(byKey(gotA.records)).toEqual(byKey(records));
    expect(await Promise.all([0, 1, 2, 3].map((p) => segmentsOf(dir, p)))).toEqual(rolled);
    await b.close();

    const b2 = track(log.consumer({ group: 'b' }));
    const gotB = await collect(b2);
    await waitFor('group b', async () => gotB.records.length >= 400 && (await b2.lag()) === 0);
    await waitFor('retention', async () => (await Promise.all([0, 1, 2, 3].map((p) => segmentsOf(dir, p)))).every((names) => names.length === 1));
    expect(byKey(gotB.records)).toEqual(byKey(records));
    const kept = await Promise.all([0, 1, 2, 3].map((p) => segmentsOf(dir, p)));
    expect(kept.map((names) => names[0])).toEqual(rolled.map((names) => names.at(-1)));

    // The records still kept stay readable after retention and a restart of the group.
    await producer.append([{ key: 'unit-1', value: 'late' }]);
    await waitFor('the late record', () => gotB.records.some((r) => r.value === 'late'));
  });

  it('re-reads a segment when the records under the committed position were lost (power failure)', async () => {
    const dir = await logDir();
    const log = createFileEventLog({ dir, topic: 'events', pollIntervalMs: 20 });
    const records = makeRecords(10, 1, 'lost');
    const p1 = log.producer();
    await p1.append(records);
    await p1.close();
    const c1 = log.consumer({ group: 'aggregator' });
    const first = await collect(c1);
    await waitFor('the 10 records', async () => first.records.length >= 10 && (await c1.lag()) === 0);
    await c1.close();

    // The last five writes never reached the disk, and new records took their place.
    const segment = firstSegment(dir, records[0]!.key);
    await truncate(segment, ((await stat(segment)).size / 10) * 5);
    const replacements = makeRecords(5, 1, 'new');
    const p2 = track(log.producer());
    await p2.append(replacements);

    const c2 = track(log.consumer({ group: 'aggregator' }));
    const second = await collect(c2);
    await waitFor('the new records', () => second.records.filter((r) => r.value.includes('"new"')).length >= 5);
    expect(second.records.map((r) => r.value)).toEqual([...records.slice(0, 5), ...replacements].map((r) => r.value));
  });

  it('refuses a second producer, a second consumer of one group, and another partition count', async () => {
    const dir = await logDir();
    const log = createFileEventLog({ dir, topic: 'events' });
    const producer = track(log.producer());
    await producer.ping();
    await expect(track(log.producer()).ping()).rejects.toThrow(/in use by process/);

    const consumer = track(log.consumer({ group: 'aggregator' }));
    await consumer.run({ eachBatch: async () => {} });
    await expect(track(log.consumer({ group: 'aggregator' })).run({ eachBatch: async () => {} })).rejects.toThrow(/in use by process/);
    await consumer.close();
    await track(log.consumer({ group: 'aggregator' })).run({ eachBatch: async () => {} });

    await expect(track(createFileEventLog({ dir, topic: 'events', partitions: 8 }).producer()).ping()).rejects.toThrow(/4 partitions/);
    expect(() => log.consumer({ group: '../escape' })).toThrow(/must match/);
  });

  it('rejects appends after close', async () => {
    const dir = await logDir();
    const producer = createFileEventLog({ dir, topic: 'events' }).producer();
    await producer.append([{ key: 'k', value: 'v' }]);
    await producer.close();
    await expect(producer.append([{ key: 'k', value: 'v' }])).rejects.toThrow(/closed/);
  });
});
