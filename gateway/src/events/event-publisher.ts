import type { Event } from '@bunryu/core';
import { silentLogger, type Logger } from '@bunryu/platform/log';
import type { EventLogProducer, LogRecord } from '@bunryu/event-log';
import { eventJson } from './event-json.ts';
import type { SpillLog } from './spill-log.ts';

export interface EventPublisherOptions {
  producer: EventLogProducer;
  spill: SpillLog;
  /** Events held in memory; beyond it the publisher spills to disk instead of waiting for the log. */
  queueLimit: number;
  /** The same bound in bytes of serialized events (default 32 MiB): what keeps the process's memory bounded. */
  queueBytesLimit?: number;
  /** Records per append (default 1000). */
  batchSize?: number;
  /** How often the background flusher runs (default 20 ms). */
  flushIntervalMs?: number;
  /**
   * An append slower than this counts as failed and its batch is spilled (default 15 s). A safety
   * net: the adapters bound their own appends (Kafka: 10 s) and normally fail first.
   */
  appendTimeoutMs?: number;
  /** Backoff between recovery attempts while spilling (default 250 ms doubling to 5 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  logger?: Logger;
  now?: () => number;
}

export interface PublisherStats {
  /** Events in memory, waiting for the flusher. */
  queued: number;
  /** Events on disk, waiting for the log to come back. */
  spillPending: number;
  /** Events ever written to the spill. */
  spilled: number;
  /** Events the log acknowledged. */
  published: number;
  /** Appends that failed (each sent its batch to the spill). */
  failures: number;
  mode: 'memory' | 'spill';
}


/**
 * What request handlers publish through: the EventPublisher, or in a cluster worker its link to
 * the primary's publisher.
 */
export interface EventSink {
  /** Queues one event for the log, keyed by unit id. Never blocks and never throws. */
  publish(key: string, event: Event): void;
  /** `publish` for an event already serialized. */
  publishJson(key: string, json: string): void;
  /** Resolves once everything published so far is in the event log or on disk. */
  flush(): Promise<void>;
  stats(): PublisherStats;
  close(): Promise<void>;
}

/**
 * Decouples the hot path from the event log (SPEC §1 step 7, §8). `publish` only pushes onto an
 * in-memory queue; one background pump moves the queue to the producer in batches. When an
 * append fails, or the queue outgrows its limit, the pump switches to spill mode: the failed
 * batch and everything after it go to an fsynced file on disk, and a recovery loop replays that
 * file in order, before any newer event, until it is empty. Nothing blocks, nothing is dropped.
 */
export class EventPublisher implements EventSink {
  private queue: LogRecord[] = [];
  /** Characters of the queued values: their bytes, near enough (the JSON is mostly ASCII). */
  private queuedBytes = 0;
  /** Set while an append is in flight: called when the queue outgrows its bounds meanwhile. */
  private overflowed: (() => void) | null = null;
  private mode: 'memory' | 'spill';
  private pumping: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private kickScheduled = false;
  private closed = false;
  /** flush() wants everything out now, not only full batches. */
  private draining = 0;
  private retryDelay: number;
  private nextRetryAt = 0;
  private spilled = 0;
  private published = 0;
  private failures = 0;

  private readonly producer: EventLogProducer;
  private readonly spill: SpillLog;
  private readonly queueLimit: number;
  private readonly queueBytesLimit: number;
  private readonly batchSize: number;
  private readonly appendTimeoutMs: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(options: EventPublisherOptions) {
    this.producer = options.producer;
    this.spill = options.spill;
    this.queueLimit = options.queueLimit;
    this.queueBytesLimit = options.queueBytesLimit ?? 32 * 1024 * 1024;
    this.batchSize = options.batchSize ?? 1000;
    this.appendTimeoutMs = options.appendTimeoutMs ?? 15_000;
    this.retryMinMs = options.retryMinMs ?? 250;
    this.retryMaxMs = options.retryMaxMs ?? 5000;
    this.retryDelay = this.retryMinMs;
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
    // Events a previous run left on disk are older than anything new: replay them first.
    this.mode = this.spill.pending > 0 ? 'spill' : 'memory';
    this.timer = setInterval(() => this.kick(), options.flushIntervalMs ?? 20);
    this.timer.unref();
  }

  /**
   * Queues one event for the log, keyed by unit id. Never blocks and never throws. The event is
   * serialized here, spread over the requests, rather than a whole batch at once in the pump,
   * which would stall the event loop for every request waiting at that moment.
   */
  publish(key: string, event: Event): void {
    this.publishJson(key, eventJson(event));
  }

  /** `publish` for an event already serialized (the hot path's exposures). */
  publishJson(key: string, json: string): void {
    const queued = this.queue.push({ key, value: json });
    this.queuedBytes += json.length;
    if (queued === this.batchSize) this.scheduleKick();
    if (this.overflowed !== null && this.full()) this.overflowed();
  }

  stats(): PublisherStats {
    return {
      queued: this.queue.length,
      spillPending: this.spill.pending,
      spilled: this.spilled,
      published: this.published,
      failures: this.failures,
      mode: this.mode,
    };
  }

  /** Resolves once everything published so far is in the log or on disk. */
  async flush(): Promise<void> {
    this.draining++;
    try {
      while (this.queue.length > 0 || this.pumping) {
        this.startPump();
        await this.pumping;
      }
    } finally {
      this.draining--;
    }
  }

  /**
   * Stops the flusher and makes everything durable: into the log when it answers, else onto
   * disk for the next start to replay. The producer itself is closed by its owner.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.pumping;
    if (this.queue.length > 0) {
      const records = this.take(this.queue.length);
      let delivered = false;
      if (this.mode === 'memory') {
        try {
          // Bounded, so a dead log cannot hold shutdown past the process's grace period.
          await this.append(records, Math.min(this.appendTimeoutMs, 3000));
          this.published += records.length;
          delivered = true;
        } catch {
          this.failures++;
        }
      }
      if (!delivered) await this.toSpill(records);
    }
    await this.spill.close();
  }

  private scheduleKick(): void {
    if (this.kickScheduled) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      this.kick();
    });
  }

  private kick(): void {
    if (this.pumping || this.closed) return;
    if (this.queue.length === 0 && (this.mode === 'memory' || this.now() < this.nextRetryAt)) return;
    this.startPump();
  }

  private startPump(): void {
    if (this.pumping) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
    });
  }

  private async pump(): Promise<void> {
    try {
      while (!this.closed || this.queue.length > 0) {
        if (this.mode === 'memory') {
          if (this.queue.length === 0) return;
          if (this.full()) {
            this.enterSpill('the event queue is full');
            continue;
          }
          const records = this.take(Math.min(this.queue.length, this.batchSize));
          let outcome: 'appended' | 'overflowed';
          const appending = this.append(records);
          try {
            // A log that is slow but not failing must not let the queue grow past its bounds
            // while it answers: the queue then goes to disk without waiting for the append.
            outcome = await Promise.race([
              appending.then(() => 'appended' as const),
              new Promise<'overflowed'>((resolve) => (this.overflowed = () => resolve('overflowed'))),
            ]);
          } catch (err) {
            this.failures++;
            this.enterSpill('the event log rejected an append', err);
            // Order matters: the failed batch is older than anything still queued.
            await this.toSpill(records);
            continue;
          } finally {
            this.overflowed = null;
          }
          if (outcome === 'appended') this.published += records.length;
          if (outcome === 'overflowed') {
            this.enterSpill('the event queue outgrew its bounds behind a slow event log');
            // The batch goes to disk ahead of what came after it, whatever its append does: if it
            // still succeeds, the replay sends it again, and the aggregator drops the copies by
            // eventId (events to the log are at least once). Only the replay counts as published.
            appending.catch(() => {
              this.failures++;
            });
            await this.toSpill(records);
            continue;
          }
          // An append has a fixed cost (an fsync, a Kafka round trip) far above its per-record
          // cost: what arrived meanwhile waits for the next tick unless it makes a full batch.
          if (this.queue.length < this.batchSize && this.draining === 0 && !this.closed) return;
          continue;
        }

        // Spill mode: whatever is queued goes to disk behind what is already there.
        if (this.queue.length > 0) await this.toSpill(this.take(this.queue.length));
        if (this.closed || this.now() < this.nextRetryAt) return;
        const batch = await this.spill.read(this.batchSize);
        if (!batch) {
          this.mode = 'memory';
          this.retryDelay = this.retryMinMs;
          this.logger.info({ published: this.published }, 'event log recovered: spill replayed, back to memory');
          continue;
        }
        try {
          await this.append(batch.records);
          this.published += batch.records.length;
          await batch.commit();
          this.retryDelay = this.retryMinMs;
        } catch (err) {
          this.failures++;
          this.nextRetryAt = this.now() + this.retryDelay;
          this.logger.warn({ err: String(err), retryInMs: this.retryDelay, spillPending: this.spill.pending }, 'event log still unavailable');
          this.retryDelay = Math.min(this.retryMaxMs, this.retryDelay * 2);
          return;
        }
      }
    } catch (err) {
      // Only the disk can get here (toSpill put its records back): the next tick tries again.
      this.logger.error({ err: String(err) }, 'event spill failed');
    }
  }

  /** Appends to the disk spill; on failure puts the records back at the head of the queue. */
  private async toSpill(records: LogRecord[]): Promise<void> {
    try {
      await this.spill.append(records);
      this.spilled += records.length;
    } catch (err) {
      this.queue = records.concat(this.queue);
      for (const r of records) this.queuedBytes += r.value.length;
      throw err;
    }
  }

  private enterSpill(reason: string, err?: unknown): void {
    if (this.mode === 'spill') return;
    this.mode = 'spill';
    this.nextRetryAt = this.now() + this.retryDelay;
    this.logger.warn({ reason, err: err === undefined ? undefined : String(err) }, 'events spill to disk');
  }

  private full(): boolean {
    return this.queue.length > this.queueLimit || this.queuedBytes > this.queueBytesLimit;
  }

  private take(n: number): LogRecord[] {
    if (n === this.queue.length) {
      const all = this.queue;
      this.queue = [];
      this.queuedBytes = 0;
      return all;
    }
    const taken = this.queue.splice(0, n);
    for (const r of taken) this.queuedBytes -= r.value.length;
    return taken;
  }

  private async append(records: LogRecord[], timeoutMs = this.appendTimeoutMs): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`append timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.producer.append(records), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
