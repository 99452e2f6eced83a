import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsumedRecord, EventLog, EventLogConsumer, LogRecord } from '../../src/index.ts';

/** Polls until `check` holds (or throws after `timeoutMs`, saying what it waited for). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export function makeRecords(count: number, keys: number, tag: string, pad = 0): LogRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    key: `unit-${i % keys}`,
    value: JSON.stringify({ tag, i, pad: 'x'.repeat(pad) }),
  }));
}

export interface Collected {
  records: ConsumedRecord[];
  batches: ConsumedRecord[][];
}

/** Runs a consumer that accepts every batch and keeps what it got. */
export async function collect(consumer: EventLogConsumer): Promise<Collected> {
  const collected: Collected = { records: [], batches: [] };
  await consumer.run({
    async eachBatch(batch) {
      collected.batches.push([...batch]);
      collected.records.push(...batch);
    },
  });
  return collected;
}

/** Values grouped by key, in delivery order. */
export function byKey(records: readonly LogRecord[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const r of records) map.set(r.key, [...(map.get(r.key) ?? []), r.value]);
  return map;
}

export async function tempDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'bunryu-event-log-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export type { EventLog };
