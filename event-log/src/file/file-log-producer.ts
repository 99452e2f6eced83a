import { open, type FileHandle } from 'node:fs/promises';
import { murmur3 } from '@bunryu/core';
import type { EventLogProducer, LogRecord } from '../event-log.ts';
import { syncDir } from '@bunryu/platform/durable-files';
import { acquireLock, type FileLogLayout } from './file-log-layout.ts';
import { encodeRecord, recordBytes } from './record-format.ts';
import { scanToEnd } from './segment-reader.ts';
import type { Logger } from '@bunryu/platform/log';

export interface FileLogProducerOptions {
  /** A segment at least this long is closed and a new one started before the next write. */
  segmentBytes: number;
  logger: Logger;
}

interface Partition {
  index: number;
  /** Offset of the active segment's first record (its file name). */
  base: number;
  fh: FileHandle;
  /** Bytes of whole records in the active segment: where the next write goes. */
  size: number;
  nextOffset: number;
  /** A write failed: the segment's tail is unknown until repaired. */
  damaged: boolean;
}

interface Pending {
  /** Encoded records per partition (undefined where the append has none). */
  parts: (Buffer | undefined)[];
  counts: number[];
  resolve(): void;
  reject(error: Error): void;
}

/**
 * Appends to the embedded log. Concurrent appends are group-committed: while one write+fsync
 * runs, the next appends queue, and then go to disk together in one write and one fsync per
 * partition, so durability costs one fsync per batch of batches, not per record.
 */
export class FileLogProducer implements EventLogProducer {
  private ready: Promise<void> | undefined;
  private partitions: Partition[] = [];
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  private releaseLock: (() => Promise<void>) | undefined;

  constructor(
    private readonly layout: FileLogLayout,
    private readonly options: FileLogProducerOptions,
  ) {}

  async append(records: readonly LogRecord[]): Promise<void> {
    await this.open();
    if (records.length === 0) return;
    const { parts, counts } = this.encode(records);
    return this.enqueue(parts, counts);
  }

  async ping(): Promise<void> {
    await this.open();
    // An empty flush repairs partitions whose last write failed; it fails while they still cannot be written.
    await this.enqueue([], []);
    const damaged = this.partitions.filter((p) => p.damaged).map((p) => p.index);
    if (damaged.length > 0) throw new Error(`event log partitions ${damaged.join(', ')} of ${this.layout.root} cannot be written`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const ready = this.ready;
    if (!ready || !(await ready.then(() => true, () => false))) return;
    while (this.flushing) await this.flushing;
    await Promise.all(this.partitions.map((p) => p.fh.close().catch(() => {})));
    await this.releaseLock?.();
  }

  private async open(): Promise<void> {
    if (this.closed) throw new Error(`the event log producer of ${this.layout.root} is closed`);
    this.ready ??= this.recover().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    await this.ready;
    if (this.closed) throw new Error(`the event log producer of ${this.layout.root} is closed`);
  }

  private async recover(): Promise<void> {
    await this.layout.ensure();
    const release = await acquireLock(this.layout.producerLock, `the event log ${this.layout.root}`);
    try {
      this.partitions = await Promise.all(Array.from({ length: this.layout.partitions }, (_, index) => this.openPartition(index)));
    } catch (error) {
      await Promise.all(this.partitions.map((p) => p.fh.close().catch(() => {})));
      await release();
      throw error;
    }
    this.releaseLock = release;
  }

  private async openPartition(index: number): Promise<Partition> {
    const base = (await this.layout.segments(index)).at(-1) ?? 0;
    const path = this.layout.segmentPath(index, base);
    // 'a' creates the first segment without truncating one another process made meanwhile.
    await (await open(path, 'a')).close();
    await syncDir(this.layout.partitionDir(index));
    const partition: Partition = { index, base, fh: await open(path, 'r+'), size: 0, nextOffset: base, damaged: true };
    await this.repair(partition);
    return partition;
  }

  /** Finds where the whole records end (from the last known good end) and cuts a torn write after them. */
  private async repair(p: Partition): Promise<void> {
    const { end, records } = await scanToEnd(p.fh, p.size);
    const { size } = await p.fh.stat();
    if (size > end) {
      this.options.logger.warn(
        { segment: this.layout.segmentPath(p.index, p.base), validBytes: end, droppedBytes: size - end },
        'event log: cutting a torn write off the end of a segment',
      );
      await p.fh.truncate(end);
    }
    await p.fh.datasync();
    p.size = end;
    p.nextOffset += records;
    p.damaged = false;
  }

  /** Encodes each partition's records into one buffer; a unit's records keep their order. */
  private encode(records: readonly LogRecord[]): { parts: (Buffer | undefined)[]; counts: number[] } {
    const n = this.layout.partitions;
    const keys: Buffer[] = new Array(records.length);
    const valueBytes: number[] = new Array(records.length);
    const partitionOf = new Uint16Array(records.length);
    const sizes = new Array<number>(n).fill(0);
    const counts = new Array<number>(n).fill(0);
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      const key = Buffer.from(record.key, 'utf8');
      const bytes = Buffer.byteLength(record.value, 'utf8');
      const partition = murmur3(key) % n;
      keys[i] = key;
      valueBytes[i] = bytes;
      partitionOf[i] = partition;
      sizes[partition]! += recordBytes(key.length, bytes);
      counts[partition]!++;
    }
    const parts = sizes.map((size) => (size > 0 ? Buffer.allocUnsafe(size) : undefined));
    const at = new Array<number>(n).fill(0);
    for (let i = 0; i < records.length; i++) {
      const p = partitionOf[i]!;
      at[p] = encodeRecord(parts[p]!, at[p]!, keys[i]!, records[i]!.value, valueBytes[i]!);
    }
    return { parts, counts };
  }

  private enqueue(parts: (Buffer | undefined)[], counts: number[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ parts, counts, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.flushQueued().finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async flushQueued(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      const errors = await Promise.all(this.partitions.map((p) => this.flushPartition(p, batch)));
      for (const item of batch) {
        const error = errors.find((e, p) => e && item.parts[p]);
        if (error) item.reject(error);
        else item.resolve();
      }
    }
  }

  private async flushPartition(p: Partition, batch: Pending[]): Promise<Error | undefined> {
    const buffers: Buffer[] = [];
    let count = 0;
    for (const item of batch) {
      const part = item.parts[p.index];
      if (!part) continue;
      buffers.push(part);
      count += item.counts[p.index]!;
    }
    try {
      if (p.damaged) await this.repair(p);
      if (buffers.length === 0) return undefined;
      if (p.size >= this.options.segmentBytes) await this.roll(p);
      const bytes = await this.write(p, buffers);
      p.size += bytes;
      p.nextOffset += count;
      return undefined;
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }

  private async write(p: Partition, buffers: Buffer[]): Promise<number> {
    let position = p.size;
    let pending = buffers;
    try {
      while (pending.length > 0) {
        const { bytesWritten } = await p.fh.writev(pending, position);
        if (bytesWritten <= 0) throw new Error(`the disk took no bytes of a write to ${this.layout.segmentPath(p.index, p.base)}`);
        position += bytesWritten;
        pending = dropBytes(pending, bytesWritten);
      }
      await p.fh.datasync();
    } catch (error) {
      // Part of the write may be on disk; repair() keeps its whole records and cuts the rest.
      p.damaged = true;
      throw error;
    }
    return position - p.size;
  }

  /** Starts a new segment named after the next offset; the old one is complete and fsynced. */
  private async roll(p: Partition): Promise<void> {
    const base = p.nextOffset;
    const fh = await open(this.layout.segmentPath(p.index, base), 'wx');
    await syncDir(this.layout.partitionDir(p.index));
    await p.fh.close().catch(() => {});
    p.fh = fh;
    p.base = base;
    p.size = 0;
  }
}

function dropBytes(buffers: Buffer[], bytes: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const buffer of buffers) {
    if (bytes >= buffer.length) {
      bytes -= buffer.length;
      continue;
    }
    rest.push(bytes > 0 ? buffer.subarray(bytes) : buffer);
    bytes = 0;
  }
  return rest;
}
