import { watch, type FSWatcher } from 'node:fs';
import { readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConsumerHandlers, EventLogConsumer } from '../event-log.ts';
import { writeFileDurably } from '@bunryu/platform/durable-files';
import { acquireLock, isNotFound, type FileLogLayout } from './file-log-layout.ts';
import { PartitionCursor, type LogPosition, type ReadBatch } from './partition-cursor.ts';
import type { Logger } from '@bunryu/platform/log';

export interface FileLogConsumerOptions {
  /** Longest wait for new records when file-change notifications do not arrive. */
  pollIntervalMs: number;
  /** Read size per partition and batch: a batch holds at most this many bytes of records (or one larger record). */
  maxBatchBytes: number;
  maxBatchRecords: number;
  /** Redelivery after a failed eachBatch waits retryInitialMs, doubling up to retryMaxMs. */
  retryInitialMs: number;
  retryMaxMs: number;
  /** Keep segments every group has committed (default: delete them). */
  keepCommittedSegments: boolean;
  retentionIntervalMs: number;
  logger: Logger;
}

interface OffsetsFile {
  partitions: (LogPosition | null)[];
}

/**
 * Tails the embedded log for one consumer group, usually in another process than the producer.
 * One loop visits the partitions in turn, hands each one's next batch to eachBatch, and commits
 * (write, fsync, rename) only after it resolves; a batch that fails is handed over again after a
 * backoff. A pid lock keeps a group to one consumer at a time.
 */
export class FileLogConsumer implements EventLogConsumer {
  private state: 'idle' | 'running' | 'closed' = 'idle';
  private starting: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  private cursors: PartitionCursor[] = [];
  private committed: (LogPosition | undefined)[] = [];
  private counters: (PartitionCursor | undefined)[] = [];
  private watchers: FSWatcher[] = [];
  private releaseLock: (() => Promise<void>) | undefined;
  private readonly wake = new Wakeup();
  private dirty = false;
  private lastRetention = 0;
  private counting: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly layout: FileLogLayout,
    private readonly group: string,
    private readonly options: FileLogConsumerOptions,
  ) {
    layout.offsetsPath(group); // validates the group name now rather than at run()
  }

  async run(handlers: ConsumerHandlers): Promise<void> {
    if (this.state !== 'idle') throw new Error(`the event log consumer of group "${this.group}" is ${this.state === 'closed' ? 'closed' : 'already running'}`);
    this.state = 'running';
    this.starting = this.start(handlers);
    try {
      await this.starting;
    } catch (error) {
      if (!this.closing) this.state = 'idle';
      throw error;
    }
  }

  async lag(): Promise<number> {
    if (this.closing) throw new Error(`the event log consumer of group "${this.group}" is closed`);
    // One count at a time: the counting cursors share their read buffers.
    const counting = this.counting.then(() => this.countLag());
    this.counting = counting.catch(() => {});
    return counting;
  }

  private async countLag(): Promise<number> {
    const committed = this.state === 'running' && this.cursors.length > 0 ? this.committed : await this.readCommitted();
    let lag = 0;
    for (let p = 0; p < this.layout.partitions; p++) {
      const from = committed[p];
      const start = from?.offset ?? (await this.layout.segments(p))[0] ?? 0;
      let counter = this.counters[p];
      if (!counter || counter.at.offset < start) {
        await counter?.close();
        counter = await PartitionCursor.open(this.layout, p, from, 1 << 20, this.options.logger);
        this.counters[p] = counter;
      }
      while (await counter.read(Number.POSITIVE_INFINITY, false));
      lag += counter.at.offset - start;
    }
    return lag;
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.wake.notify();
    await this.starting?.catch(() => {});
    await this.loop;
    await this.release();
    await this.counting;
    await Promise.all(this.counters.map((c) => c?.close()));
    this.counters = [];
  }

  private get closing(): boolean {
    return this.state === 'closed';
  }

  private async start(handlers: ConsumerHandlers): Promise<void> {
    await this.layout.ensure();
    this.releaseLock = await acquireLock(this.layout.groupLock(this.group), `consumer group "${this.group}" of ${this.layout.root}`);
    try {
      const committed = await this.readCommitted();
      this.cursors = await Promise.all(
        Array.from({ length: this.layout.partitions }, (_, p) =>
          PartitionCursor.open(this.layout, p, committed[p], this.options.maxBatchBytes, this.options.logger),
        ),
      );
      // Written at once so that retention knows this group before it has committed anything.
      this.committed = this.cursors.map((c) => c.at);
      await this.persist();
      for (let p = 0; p < this.layout.partitions; p++) {
        try {
          const watcher = watch(this.layout.partitionDir(p), { persistent: false }, () => this.wake.notify());
          watcher.on('error', () => watcher.close());
          this.watchers.push(watcher);
        } catch {
          // No notifications (e.g. inotify limits): polling alone still finds the records.
        }
      }
    } catch (error) {
      await this.release();
      throw error;
    }
    this.loop = this.consume(handlers);
  }

  private async release(): Promise<void> {
    for (const watcher of this.watchers) watcher.close();
    this.watchers = [];
    await Promise.all(this.cursors.map((c) => c.close()));
    this.cursors = [];
    await this.releaseLock?.();
    this.releaseLock = undefined;
  }

  private async consume(handlers: ConsumerHandlers): Promise<void> {
    const n = this.layout.partitions;
    const pending: (ReadBatch | undefined)[] = new Array(n);
    const failures = new Array<number>(n).fill(0);
    const retryAt = new Array<number>(n).fill(0);
    while (!this.closing) {
      let delivered = false;
      try {
        for (let p = 0; p < n && !this.closing; p++) {
          if (Date.now() < retryAt[p]!) continue;
          const batch = pending[p] ?? (await this.cursors[p]!.read(this.options.maxBatchRecords, true));
          if (!batch) continue;
          pending[p] = batch;
          try {
            await handlers.eachBatch(batch.records);
          } catch (error) {
            failures[p]!++;
            retryAt[p] = Date.now() + Math.min(this.options.retryMaxMs, this.options.retryInitialMs * 2 ** (failures[p]! - 1));
            this.options.logger.warn(
              { err: error, group: this.group, partition: p, offset: batch.records[0]?.offset, attempt: failures[p] },
              'event log: eachBatch failed; its records will be delivered again',
            );
            continue;
          }
          // Closed while the handler ran: like a crash before the commit, the next consumer gets these again.
          if (this.closing) break;
          pending[p] = undefined;
          failures[p] = 0;
          retryAt[p] = 0;
          this.committed[p] = batch.end;
          this.dirty = true;
          delivered = true;
          await this.persist();
        }
        if (this.dirty && !this.closing) await this.persist();
        await this.retain();
      } catch (error) {
        this.options.logger.error({ err: error, group: this.group }, 'event log: consuming failed; trying again');
        await this.wake.wait(this.options.retryMaxMs);
        continue;
      }
      if (delivered) continue;
      const nextRetry = Math.min(...retryAt.filter((t) => t > 0));
      await this.wake.wait(Math.max(0, Math.min(this.options.pollIntervalMs, nextRetry - Date.now())));
    }
  }

  private async persist(): Promise<void> {
    const file: OffsetsFile = { partitions: this.committed.map((c) => c ?? null) };
    await writeFileDurably(this.layout.offsetsPath(this.group), JSON.stringify(file));
    this.dirty = false;
  }

  private async readCommitted(): Promise<(LogPosition | undefined)[]> {
    const file = await readOffsets(this.layout.offsetsPath(this.group));
    return file ? file.partitions.map((p) => p ?? undefined) : [];
  }

  /**
   * Deletes the segments every known group has read and committed entirely (a group is known
   * from its offsets file; deleting that file forgets it). The active segment always stays.
   */
  private async retain(): Promise<void> {
    if (this.options.keepCommittedSegments || Date.now() - this.lastRetention < this.options.retentionIntervalMs) return;
    this.lastRetention = Date.now();
    const names = (await readdir(this.layout.offsetsDir)).filter((name) => name.endsWith('.json'));
    const groups = await Promise.all(names.map((name) => readOffsets(join(this.layout.offsetsDir, name)).catch(() => undefined)));
    for (let p = 0; p < this.layout.partitions; p++) {
      const segments = await this.layout.segments(p);
      if (segments.length < 2) continue;
      // An unreadable offsets file counts as a group that has read nothing.
      const floor = Math.min(...groups.map((g) => g?.partitions[p]?.offset ?? 0));
      for (let i = 0; i + 1 < segments.length && segments[i + 1]! <= floor; i++) {
        await unlink(this.layout.segmentPath(p, segments[i]!)).catch((error: unknown) => {
          if (!isNotFound(error)) throw error;
        });
      }
    }
  }
}

async function readOffsets(path: string): Promise<OffsetsFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  const file = JSON.parse(text) as OffsetsFile;
  if (!Array.isArray(file.partitions)) throw new Error(`${path} holds no committed offsets`);
  return file;
}

/** A sleep that file-change notifications and close() cut short. */
class Wakeup {
  private pending = false;
  private wakeUp: (() => void) | undefined;

  notify(): void {
    this.pending = true;
    this.wakeUp?.();
  }

  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        this.pending = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }
}
