// Append throughput of the embedded log and the Kafka producer: 100k ~300-byte records in
// batches of 500, awaited one at a time and 8 at a time. Not a test; run by hand:
//   node --import tsx event-log/bench/append-throughput.ts [KAFKA_BROKERS]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { createFileEventLog, createKafkaEventLog, type EventLog, type LogRecord } from '../src/index.ts';

const TOTAL = 100_000;
const BATCH = 500;
const brokers = process.argv[2] ?? process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';

const records: LogRecord[] = Array.from({ length: TOTAL }, (_, i) => {
  const event = { eventId: crypto.randomUUID(), type: 'exposure', ts: 1763800000000 + i, unitId: `u-${i % 5000}`, route: 'recommend', requestId: crypto.randomUUID(), assignments: [{ experiment: 'ranker-v2', variant: 'treatment' }], latencyMs: 4.2, status: 200 };
  const value = JSON.stringify(event);
  return { key: event.unitId, value: value + ' '.repeat(Math.max(0, 300 - value.length)) };
});
const batches = Array.from({ length: TOTAL / BATCH }, (_, i) => records.slice(i * BATCH, (i + 1) * BATCH));

async function measure(name: string, log: EventLog, inFlight: number): Promise<void> {
  const producer = log.producer();
  await producer.append(batches[0]!.slice(0, 1)); // connect / open outside the timing
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < batches.length) await producer.append(batches[next++]!);
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  console.log(`${name.padEnd(34)} in flight ${inFlight}: ${Math.round(TOTAL / seconds).toLocaleString('en')} records/s (${(seconds * 1000).toFixed(0)} ms)`);
  await producer.close();
}

async function consumeAll(name: string, log: EventLog): Promise<void> {
  const consumer = log.consumer({ group: `bench-${Date.now()}` });
  let seen = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    void consumer.run({
      async eachBatch(batch) {
        seen += batch.length;
        if (seen >= 2 * TOTAL + 2) resolve();
      },
    });
  });
  const seconds = (performance.now() - start) / 1000;
  console.log(`${name.padEnd(34)} consumed ${seen.toLocaleString('en')} records: ${Math.round(seen / seconds).toLocaleString('en')} records/s`);
  await consumer.close();
}

const dir = await mkdtemp(join(tmpdir(), 'bunryu-bench-'));
const fileLog = createFileEventLog({ dir, topic: 'events' });
await measure('embedded (write+fdatasync)', fileLog, 1);
await measure('embedded (write+fdatasync)', fileLog, 8);
await consumeAll('embedded', fileLog);
await rm(dir, { recursive: true, force: true });

const topics: string[] = [];
for (const compression of ['none', 'gzip'] as const) {
  for (const inFlight of [1, 8]) {
    const topic = `bunryu-bench-${Date.now()}-${compression}-${inFlight}`;
    topics.push(topic);
    await measure(`kafka (acks all, idempotent, ${compression})`, createKafkaEventLog({ brokers, topic, compression }), inFlight);
  }
}
const admin = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING }).admin();
await admin.connect();
await admin.deleteTopics({ topics });
await admin.disconnect();
