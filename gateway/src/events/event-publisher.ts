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
  /** Writes to the spill that failed (a full disk): their events stayed in memory. */
  spillErrors: number;
  /** The last spill write failed: events that must be durable are refused (`refusal()`). */
  spillFailing: boolean;
  /** Events dropped because neither the spill nor the memory queue could take them. */
  dropped: number;
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
  /**
   * Resolves once everything published so far is in the event log or on disk. While the log
   * is not taking events it only writes them to the spill; it rejects when the spill fails.
   */
  flush(): Promise<void>;
  /**
   * True while the log is not taking events and the spill is: an answer that acknowledges events
   * (a 202, or a prediction whose exposure is logged) waits for `flush()` so that they outlive
   * the process. False while the log takes them: the answer goes out at once.
   */
  flushBeforeAnswer(): boolean;
  /** While neither the log nor the spill takes events: why, for a 503; else null. */
  refusal(): string | null;
  stats(): PublisherStats;
  close(): Promise<void>;
}

/**
 * Decouples the hot path from the event log (SPEC §1 step 7, §8). `publish` only pushes onto an
 * in-memory queue; one background pump moves the queue to the producer in batches. When an
 * append fails, or the queue outgrows its limit, the publisher switches to spill mode: the failed
 * batch and everything after it go to a file on disk, and the pump replays that file in order
 * until it is empty. In spill mode answers wait for `flush()`, which writes the queue to the
 * spill at once (one write for every answer waiting then), so an event acknowledged is in the
 * file, which outlives the process, before its answer leaves (ADR 0014); the file is fsynced on
 * every tick. The replay's appends, which a dead broker can hold for seconds, never stand in the
 * answers' way.
 *
 * When the spill fails too (a full disk), its events stay in memory, still bounded, and go to
 * the log when it returns; `refusal()` says so, and the write is tried again with a backoff.
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
  private spillErrors = 0;
  private dropped = 0;
  /** The last spill write failed: why, and when writes are tried again for answers. */
  private spillFailure: { error: string; retryAt: number } | null = null;
  private spillRetryDelay: number;
  /** The latest write of the queue to the spill, and whether it has taken its records yet. */
  private spillWrite: Promise<void> | null = null;
  private spillWriteTook = true;

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
    this.spillRetryDelay = this.retryMinMs;
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
    // Events a previous run left on disk are older than anything new: replay them first.
    this.mode = this.spill.pending > 0 ? 'spill' : 'memory';
    this.timer = setInterval(() => {
      this.kick();
      // Answers wait for the spill's write, not its fsync: a machine crash costs at most a tick of them.
      void this.spill.sync();
    }, options.flushIntervalMs ?? 20);
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
    if (this.spillFailure !== null && this.full()) {
      // Neither the disk nor memory can hold it: counted and logged, never silent.
      if (this.dropped++ % 10_000 === 0) this.logger.error({ dropped: this.dropped, spillError: this.spillFailure.error }, 'events dropped: the spill fails and the memory queue is full');
      return;
    }
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
      spillErrors: this.spillErrors,
      spillFailing: this.spillFailure !== null,
      dropped: this.dropped,
      mode: this.mode,
    };
  }

  /** Resolves once everything published so far is in the log or on disk. */
  async flush(): Promise<void> {
    this.draining++;
    try {
      for (;;) {
        if (this.mode === 'spill') {
          await this.writeQueueToSpill();
          if (this.mode === 'spill' || (this.queue.length === 0 && !this.pumping)) return;
          continue;
        }
        if (this.queue.length === 0 && !this.pumping) return;
        this.startPump();
        await this.pumping;
      }
    } finally {
      this.draining--;
    }
  }

  flushBeforeAnswer(): boolean {
    return this.mode === 'spill' && this.refusal() === null;
  }

  refusal(): string | null {
    const failure = this.spillFailure;
    if (failure === null || this.now() >= failure.retryAt) return null;
    return `the event log is unreachable and the gateway's disk spill cannot take events (${failure.error}): send them again later`;
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
    await this.spillWrite?.catch(() => {});
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
      if (!delivered) {
        this.requeue(records);
        await this.writeQueueToSpill();
      }
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
            this.requeue(records);
            await this.writeQueueToSpill();
            continue;
          } finally {
            this.overflowed = null;
          }
          if (outcome === 'appended') {
            this.published += records.length;
            // The log takes events again: nothing needs the spill, nothing is refused.
            this.spillFailure = null;
          }
          if (outcome === 'overflowed') {
            this.enterSpill('the event queue outgrew its bounds behind a slow event log');
            // The batch goes to disk ahead of what came after it, whatever its append does: if it
            // still succeeds, the replay sends it again, and the aggregator drops the copies by
            // eventId (events to the log are at least once). Only the replay counts as published.
            appending.catch(() => {
              this.failures++;
            });
            this.requeue(records);
            await this.writeQueueToSpill();
            continue;
          }
          // An append has a fixed cost (an fsync, a Kafka round trip) far above its per-record
          // cost: what arrived meanwhile waits for the next tick unless it makes a full batch.
          if (this.queue.length < this.batchSize && this.draining === 0 && !this.closed) return;
          continue;
        }

        // Spill mode: whatever is queued goes to disk behind what is already there. A spill that
        // failed is tried again after its backoff; meanwhile its events wait in memory, and the
        // replay below still runs, so the log coming back delivers them.
        if (this.queue.length > 0 && this.now() >= (this.spillFailure?.retryAt ?? 0)) await this.writeQueueToSpill().catch(() => {});
        if (this.closed || this.now() < this.nextRetryAt) return;
        const batch = await this.spill.read(this.batchSize);
        if (!batch) {
          // A write still going on would land behind a replay that has stopped looking.
          if (this.spillWrite !== null) {
            await this.spillWrite.catch(() => {});
            continue;
          }
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
    } catch {
      // Only the disk can get here (toSpill kept the records and logged why): the next tick tries again.
    }
  }

  /**
   * Writes the whole queue to the spill. Group commit: callers that arrive before a write has
   * taken the queue share it; the others get the next one, which starts when it ends.
   */
  private writeQueueToSpill(): Promise<void> {
    if (this.spillWrite !== null && !this.spillWriteTook) return this.spillWrite;
    const previous = this.spillWrite;
    this.spillWriteTook = false;
    const write = (async () => {
      if (previous !== null) await previous.catch(() => {});
      this.spillWriteTook = true;
      await this.toSpill(this.take(this.queue.length));
    })();
    this.spillWrite = write;
    const done = () => {
      if (this.spillWrite === write) this.spillWrite = null;
    };
    write.then(done, done);
    return write;
  }

  /** Appends to the disk spill; on failure puts the records back at the head of the queue. */
  private async toSpill(records: LogRecord[]): Promise<void> {
    if (records.length === 0) return;
    try {
      await this.spill.append(records);
    } catch (err) {
      this.requeue(records);
      this.spillErrors++;
      const first = this.spillFailure === null;
      this.spillFailure = { error: errorText(err), retryAt: this.now() + this.spillRetryDelay };
      this.spillRetryDelay = Math.min(this.retryMaxMs, this.spillRetryDelay * 2);
      if (first) this.logger.error({ err: String(err), kept: this.queue.length }, 'event spill failed (disk full?): events stay in memory and client events are refused until it takes writes');
      throw err;
    }
    this.spilled += records.length;
    if (this.spillFailure !== null) this.logger.info({ spillErrors: this.spillErrors }, 'event spill takes writes again');
    this.spillFailure = null;
    this.spillRetryDelay = this.retryMinMs;
  }

  /** Puts records back at the head of the queue: they are older than anything in it. */
  private requeue(records: LogRecord[]): void {
    this.queue = records.concat(this.queue);
    for (const r of records) this.queuedBytes += r.value.length;
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

/** What failed, for a 503: `EFBIG`, `ENOSPC`. */
function errorText(err: unknown): string {
  // The code alone: the message may hold the spill's path, which a client has no business seeing.
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}
