import { integrationServer } from '@bunryu/platform/testing';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { createFileEventLog, createKafkaEventLog, type ConsumedRecord, type EventLog, type EventLogConsumer } from '../src/index.ts';
import { byKey, collect, makeRecords, tempDir, waitFor } from './support/event-log-harness.ts';

/** Builds a fresh, empty log per test (a temp folder, or a new Kafka topic) and cleans up after the suite. */
interface Adapter {
  enabled: boolean;
  open(): Promise<EventLog>;
  cleanup(): Promise<void>;
}

const kafka = await integrationServer('KAFKA_BROKERS', '127.0.0.1:9092');
const run = `${Date.now().toString(36)}-${process.pid}`;
let counter = 0;
const unique = (what: string) => `bunryu-test-${what}-${run}-${++counter}`;

function embedded(): Adapter {
  const dirs: { remove(): Promise<void> }[] = [];
  return {
    enabled: true,
    async open() {
      const temp = await tempDir();
      dirs.push(temp);
      return createFileEventLog({ dir: temp.dir, topic: 'events', pollIntervalMs: 50, retryInitialMs: 50 });
    },
    async cleanup() {
      await Promise.all(dirs.map((d) => d.remove()));
    },
  };
}

function kafkaAdapter(brokers: string | undefined): Adapter {
  const topics: string[] = [];
  return {
    enabled: brokers !== undefined,
    async open() {
      const topic = unique('topic');
      topics.push(topic);
      return createKafkaEventLog({ brokers: brokers!, topic, clientId: 'bunryu-contract-test', maxWaitTimeMs: 100, retryInitialMs: 50 });
    },
    async cleanup() {
      if (!brokers || topics.length === 0) return;
      const admin = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      await admin.deleteTopics({ topics }).catch(() => {});
      await admin.disconnect();
    },
  };
}

const adapters: [string, Adapter][] = [
  ['embedded', embedded()],
  ['kafka', kafkaAdapter(kafka.url)],
];

afterAll(async () => {
  await Promise.all(adapters.map(([, adapter]) => adapter.cleanup()));
});

describe.each(adapters)('EventLog contract: %s', (_name, adapter) => {
  const closers: (() => Promise<void>)[] = [];
  const track = <T extends { close(): Promise<void> }>(thing: T): T => {
    closers.push(() => thing.close());
    return thing;
  };
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
  });

  async function consumeAll(log: EventLog, group: string, expected: number): Promise<{ consumer: EventLogConsumer; records: ConsumedRecord[]; batches: ConsumedRecord[][] }> {
    const consumer = track(log.consumer({ group }));
    const collected = await collect(consumer);
    await waitFor(`${expected} records`, () => collected.records.length >= expected);
    await waitFor('the commit', async () => (await consumer.lag()) === 0);
    return { consumer, ...collected };
  }

  describe.skipIf(!adapter.enabled)('', () => {
    it('delivers the records exactly as appended: keys, values and order per key', async () => {
      const log = await adapter.open();
      const producer = track(log.producer());
      const records = makeRecords(200, 13, 'order');
      await producer.append(records.slice(0, 120));
      await producer.append(records.slice(120));

      const { records: got, batches } = await consumeAll(log, unique('group'), records.length);

      expect(got).toHaveLength(records.length);
      expect(byKey(got)).toEqual(byKey(records));
      for (const batch of batches) {
        expect(new Set(batch.map((r) => r.partition)).size).toBe(1);
        const offsets = batch.map((r) => BigInt(r.offset));
        expect(offsets.every((o, i) => i === 0 || o > offsets[i - 1]!)).toBe(true);
      }
      const partitionsOfKey = new Map<string, Set<number>>();
      for (const r of got) partitionsOfKey.set(r.key, (partitionsOfKey.get(r.key) ?? new Set()).add(r.partition));
      expect([...partitionsOfKey.values()].every((set) => set.size === 1)).toBe(true);
    });

    it('resumes a group after its last committed record: no repeats, no gaps', async () => {
      const log = await adapter.open();
      const producer = track(log.producer());
      const group = unique('group');
      const first = makeRecords(30, 5, 'first');
      const second = makeRecords(20, 5, 'second');
      await producer.append(first);
      const a = await consumeAll(log, group, first.length);
      await a.consumer.close();

      await producer.append(second);
      const b = await consumeAll(log, group, second.length);

      expect(a.records.map((r) => r.value).sort()).toEqual(first.map((r) => r.value).sort());
      expect(b.records.map((r) => r.value).sort()).toEqual(second.map((r) => r.value).sort());
      expect(byKey(b.records)).toEqual(byKey(second));
    });

    it('delivers the records of a batch whose handler threw again', async () => {
      const log = await adapter.open();
      const producer = track(log.producer());
      const records = makeRecords(10, 1, 'retry');
      await producer.append(records);

      const failed: ConsumedRecord[] = [];
      const accepted: ConsumedRecord[] = [];
      const consumer = track(log.consumer({ group: unique('group') }));
      await consumer.run({
        async eachBatch(batch) {
          if (failed.length === 0) {
            failed.push(...batch);
            throw new Error('the metrics store is down');
          }
          accepted.push(...batch);
        },
      });
      await waitFor('all records accepted', () => accepted.length >= records.length);
      await waitFor('the commit', async () => (await consumer.lag()) === 0);

      expect(failed.length).toBeGreaterThan(0);
      expect(accepted.slice(0, failed.length)).toEqual(failed);
      expect(accepted.map((r) => r.value)).toEqual(records.map((r) => r.value));
    });

    it('gives records processed but not committed before close to the next consumer of the group', async () => {
      const log = await adapter.open();
      const producer = track(log.producer());
      const group = unique('group');
      const records = makeRecords(5, 1, 'crash');
      await producer.append(records);

      const seen: ConsumedRecord[] = [];
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const first = track(log.consumer({ group }));
      await first.run({
        async eachBatch(batch) {
          seen.push(...batch);
          await gate;
        },
      });
      await waitFor('the first batch', () => seen.length > 0);
      const closing = first.close();
      release();
      await closing;

      const second = track(log.consumer({ group }));
      expect(await second.lag()).toBe(records.length);
      const again = await collect(second);
      await waitFor('redelivery', () => again.records.length >= records.length);
      expect(again.records.slice(0, seen.length)).toEqual(seen);
      expect(again.records.map((r) => r.value)).toEqual(records.map((r) => r.value));
    });

    it('keeps the offsets of two groups apart', async () => {
      const log = await adapter.open();
      const producer = track(log.producer());
      const records = makeRecords(20, 4, 'groups');
      await producer.append(records);

      const a = await consumeAll(log, unique('group'), records.length);
      const other = track(log.consumer({ group: unique('group') }));
      expect(await other.lag()).toBe(records.length);
      const b = await collect(other);
      await waitFor('the second group', () => b.records.length >= records.length);
      await waitFor('the commit', async () => (await other.lag()) === 0);

      expect(a.records.map((r) => r.value).sort()).toEqual(records.map((r) => r.value).sort());
      expect(b.records.map((r) => r.value).sort()).toEqual(records.map((r) => r.value).sort());
      expect(await a.consumer.lag()).toBe(0);
    });

    it('counts appended but uncommitted records as lag, down to zero once committed', async () => {
      const log = await adapter.open();
      const producer = track(log.producer());
      const consumer = track(log.consumer({ group: unique('group') }));
      expect(await consumer.lag()).toBe(0);
      await producer.append(makeRecords(25, 3, 'lag'));
      expect(await consumer.lag()).toBe(25);

      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let delivered = 0;
      await consumer.run({
        async eachBatch(batch) {
          delivered += batch.length;
          await gate;
        },
      });
      await waitFor('a batch in the handler', () => delivered > 0);
      expect(await consumer.lag()).toBe(25);
      release();
      await waitFor('lag 0', async () => (await consumer.lag()) === 0);
      expect(delivered).toBe(25);
    });

    it('consumes 10,000 appended records, no more and no fewer', async () => {
      const log = await adapter.open();
      const producer = track(log.producer());
      const records = makeRecords(10_000, 997, 'bulk', 100);
      await Promise.all(Array.from({ length: 20 }, (_, i) => producer.append(records.slice(i * 500, (i + 1) * 500))));

      const { records: got } = await consumeAll(log, unique('group'), records.length);

      expect(got).toHaveLength(records.length);
      expect(new Set(got.map((r) => r.value)).size).toBe(records.length);
    });
  });
});
