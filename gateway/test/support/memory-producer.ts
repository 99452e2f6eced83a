import type { EventLogProducer, LogRecord } from '@bunryu/event-log';

/** A small in-memory EventLogProducer whose availability a test switches. */
export class MemoryProducer implements EventLogProducer {
  readonly records: LogRecord[] = [];
  down = false;
  appends = 0;

  async append(records: readonly LogRecord[]): Promise<void> {
    this.appends++;
    await new Promise((r) => setImmediate(r));
    if (this.down) throw new Error('log unavailable');
    this.records.push(...records);
  }

  async ping(): Promise<void> {
    if (this.down) throw new Error('log unavailable');
  }

  async close(): Promise<void> {}

  events<T = Record<string, unknown>>(): T[] {
    return this.records.map((r) => JSON.parse(r.value) as T);
  }
}
