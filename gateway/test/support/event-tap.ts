import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { EVENTS_TOPIC, type Event } from '@bunryu/core';
import { createFileEventLog, type ConsumedRecord } from '@bunryu/event-log';
import type { TestGateway } from './gateway.ts';
import { until } from './gateway.ts';

export interface EventTap {
  /** Every event the gateway published so far, once its publisher flushed and this tap caught up. */
  drain(): Promise<Event[]>;
  records: ConsumedRecord[];
  close(): Promise<void>;
}

/**
 * Reads the gateway's embedded event log (`<data>/events`) as the aggregator does: a consumer
 * group of its own. `drain` returns the events appended since the previous drain.
 */
export async function tapEvents(gw: TestGateway): Promise<EventTap> {
  const log = createFileEventLog({ dir: join(gw.dataDir, 'events'), topic: EVENTS_TOPIC, pollIntervalMs: 10 });
  const consumer = log.consumer({ group: `gateway-test-${randomUUID().slice(0, 8)}` });
  const records: ConsumedRecord[] = [];
  let seen = 0;
  await consumer.run({
    eachBatch: async (batch) => {
      records.push(...batch);
    },
  });
  return {
    records,
    async drain() {
      await gw.deps.publisher.flush();
      await until(async () => (await consumer.lag()) === 0, 5000, 'the event log tap');
      const fresh = records.slice(seen).map((r) => JSON.parse(r.value) as Event);
      seen = records.length;
      return fresh;
    },
    close: () => consumer.close(),
  };
}
