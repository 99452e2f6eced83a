import { Event } from '@bunryu/core';
import type { ConsumedRecord, EventLogConsumer } from '@bunryu/event-log';
import type { Logger } from '@bunryu/platform/log';
import type { MetricsStore, StoredEvent } from '../metrics-store/metrics-store.ts';

/** Records validated (and then inserted) at a time within a batch: large enough to keep an insert's fixed cost small. */
const CHUNK = 20_000;

export interface IngestStats {
  /** Events inserted (a redelivered batch counts again). */
  ingested: number;
  /** Records skipped because they are not valid events. */
  rejected: number;
  /** Batches whose insert failed (they are delivered again). */
  failedBatches: number;
  /** When the last insert finished (ms since epoch; 0 never). */
  lastInsertAt: number;
}

export interface IngesterOptions {
  consumer: EventLogConsumer;
  store: MetricsStore;
  logger: Logger;
  now?: () => number;
}

/**
 * Consumes the event log into the metrics store (SPEC §5): each batch is validated (bad records
 * are counted and skipped, never retried), inserted, and only then handed back, so the log
 * commits offsets only after the rows are in. An insert that fails rejects the batch and the log
 * delivers it again; the store's idempotence by event id makes the replay harmless.
 */
export class Ingester {
  readonly stats: IngestStats = { ingested: 0, rejected: 0, failedBatches: 0, lastInsertAt: 0 };
  private readonly now: () => number;
  private lastRejectLog = 0;
  private readonly observers: ((seconds: number, rows: number) => void)[] = [];

  constructor(private readonly options: IngesterOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Calls `fn` with each insert's duration in seconds (the /metrics histogram). */
  observe(fn: (seconds: number, rows: number) => void): void {
    this.observers.push(fn);
  }

  start(): Promise<void> {
    return this.options.consumer.run({ eachBatch: (records) => this.ingest(records) });
  }

  stop(): Promise<void> {
    return this.options.consumer.close();
  }

  lag(): Promise<number> {
    return this.options.consumer.lag();
  }

  /**
   * The handler: validate, insert, resolve. A large batch is cut into chunks inserted one after
   * the other while the next chunk is being validated, so the JavaScript work and the store's
   * work overlap (the log hands over one batch at a time). Any failure rejects the whole batch,
   * which the log then delivers again; chunks that went in are harmless to insert again.
   */
  async ingest(records: readonly ConsumedRecord[]): Promise<void> {
    let inserting: Promise<void> = Promise.resolve();
    for (let start = 0; start < records.length; start += CHUNK) {
      const events = this.validate(records.slice(start, start + CHUNK));
      if (events.length > 0) inserting = inserting.then(() => this.insert(events));
    }
    try {
      await inserting;
    } catch (err) {
      this.stats.failedBatches++;
      throw err;
    }
  }

  /** The valid events of `records`; the others are counted and logged (at most once a second). */
  private validate(records: readonly ConsumedRecord[]): StoredEvent[] {
    const events: StoredEvent[] = [];
    let rejected = 0;
    let firstReject: { partition: number; offset: string; reason: string } | undefined;
    for (const record of records) {
      const reason = parseRecord(record.value, events);
      if (reason) {
        rejected++;
        firstReject ??= { partition: record.partition, offset: record.offset, reason };
      }
    }
    if (rejected > 0) {
      this.stats.rejected += rejected;
      // A producer gone wrong must not flood the log.
      if (this.now() - this.lastRejectLog >= 1000) {
        this.lastRejectLog = this.now();
        this.options.logger.warn({ rejected, ...firstReject }, 'skipped records that are not valid events');
      }
    }
    return events;
  }

  /**
   * Inserts, and when the store refuses the data itself (not when it is unreachable), halves the
   * batch until the refused events are isolated: they are counted as rejected and skipped, so
   * one event the store cannot take never stalls the partition. Re-inserting the halves that
   * already went in is harmless (idempotent by event id).
   */
  private async insert(events: StoredEvent[]): Promise<void> {
    const started = performance.now();
    try {
      await this.options.store.insert(events);
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (events.length === 1) {
        // The JSON as it came may say what the schema accepted in a form the store does not
        // (duplicate keys, 1e12 for an integer): the validated event, written out again, may go in.
        const [one] = events as [StoredEvent];
        const canonical = JSON.stringify(Event.parse(JSON.parse(one.json)));
        if (canonical !== one.json) return this.insert([{ eventId: one.eventId, json: canonical }]);
        this.stats.rejected++;
        this.options.logger.warn({ eventId: one.eventId, err: (err as Error).message }, 'the metrics store refused an event; skipped');
        return;
      }
      const half = Math.ceil(events.length / 2);
      await this.insert(events.slice(0, half));
      await this.insert(events.slice(half));
      return;
    }
    const seconds = (performance.now() - started) / 1000;
    for (const fn of this.observers) fn(seconds, events.length);
    this.stats.ingested += events.length;
    this.stats.lastInsertAt = this.now();
  }
}

/**
 * ClickHouse's answer to data it cannot take (parse, type and range errors), as opposed to
 * connection or server trouble, which must fail the batch so that it is delivered again later.
 */
export function isDataError(err: unknown): boolean {
  const type = (err as { type?: unknown } | null)?.type;
  return typeof type === 'string' && /PARSE|INCORRECT_DATA|TYPE_MISMATCH|CANNOT_READ|OUT_OF_RANGE|ILLEGAL_|TOO_LARGE_STRING|DECIMAL_OVERFLOW|CANNOT_CONVERT/.test(type);
}

/** Appends the record's event to `out`, or returns why it is not one. */
function parseRecord(value: string, out: StoredEvent[]): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    return 'not JSON';
  }
  const r = Event.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    return `${issue?.path.join('.') || '(event)'}: ${issue?.message ?? 'invalid'}`;
  }
  out.push({ eventId: r.data.eventId, json: value });
  return undefined;
}
