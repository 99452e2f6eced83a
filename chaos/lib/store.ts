/**
 * Reads events back from an aggregator's store one by one. chdb binds one data directory per
 * process, so each store is read by a child process of its own, once its aggregator has stopped.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { root } from './stack.ts';

/** One distinct event as the results read it: copies with the same (eventId, ts, value) are one. */
export interface StoredEvent {
  eventId: string;
  type: string;
  requestId: string;
  unitId: string;
  ts: number;
  status: number | null;
}

export async function readStore(aggregatorDataDir: string, unitPrefix: string): Promise<StoredEvent[]> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(root, 'chaos/lib/read-store.ts'), join(aggregatorDataDir, 'aggregator', 'chdb'), unitPrefix], {
    cwd: root,
    maxBuffer: 512 * 1024 * 1024,
  });
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const r = JSON.parse(line) as StoredEvent & { ts: string | number };
      return { ...r, ts: Number(r.ts), status: r.status === null ? null : Number(r.status) };
    });
}

/** Copies across several stores (two aggregators) are one event, as in one shared ClickHouse. */
export function union(stores: StoredEvent[][]): StoredEvent[] {
  const seen = new Map<string, StoredEvent>();
  for (const rows of stores) for (const r of rows) seen.set(`${r.eventId}\u0000${r.ts}`, r);
  return [...seen.values()];
}
