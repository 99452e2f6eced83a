import { mkdir, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogRecord } from '@bunryu/event-log';

const SEGMENT = /^spill-(\d{12})\.jsonl$/;
const READ_CHUNK = 1024 * 1024;

/** The segment being appended to. */
interface Writer {
  seq: number;
  handle: FileHandle;
  size: number;
  /** Appended to since its last fsync. */
  unsynced: boolean;
}

export interface SpillBatch {
  records: LogRecord[];
  /** Marks the batch as delivered: the next read starts after it. */
  commit(): Promise<void>;
}

/**
 * The gateway's disk buffer while the event log is unreachable: append-only JSON-lines segments
 * (`<key as JSON>\t<value>\n`), read back in the order written. An append is in the page cache
 * when it resolves, which outlives the process; `sync()` forces it onto the disk, which outlives
 * the machine, and the publisher calls it on every tick rather than on every append. A
 * segment is deleted once fully replayed, so a crash during replay re-sends at most one segment
 * (at least once; the aggregator deduplicates by eventId).
 *
 * Its operations run one at a time, in the order called: the publisher writes new events while
 * its pump replays older ones. An append is all or nothing: one the disk refuses (full, EFBIG)
 * is cut off again, so a failed append leaves no torn line behind.
 */
export class SpillLog {
  private segments: number[] = [];
  private writer: Writer | null = null;
  private syncing = false;
  private readSeq = -1;
  private readOffset = 0;
  private pendingCount = 0;
  /** The operation running last: the next one starts after it. */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
  ) {}

  /** Opens the spill folder and counts what a previous run left there. */
  static async open(dir: string, options: { segmentBytes?: number } = {}): Promise<SpillLog> {
    await mkdir(dir, { recursive: true });
    const log = new SpillLog(dir, options.segmentBytes ?? 64 * 1024 * 1024);
    const names = await readdir(dir);
    log.segments = names
      .map((n) => SEGMENT.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    for (const seq of log.segments) log.pendingCount += await log.repairAndCount(seq);
    if (log.segments.length > 0) log.readSeq = log.segments[0]!;
    return log;
  }

  /** Records on disk not yet replayed. */
  get pending(): number {
    return this.pendingCount;
  }

  /** Written in the order called, whole or not at all. */
  append(records: readonly LogRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    let text = '';
    for (const r of records) text += JSON.stringify(r.key) + '\t' + r.value + '\n';
    const bytes = Buffer.from(text);
    return this.serial(async () => {
      const writer = await this.writable();
      try {
        // A write can be short (a file size limit, a disk filling up): the rest is written after it.
        for (let at = 0; at < bytes.length; ) {
          const { bytesWritten } = await writer.handle.write(bytes, at, bytes.length - at, writer.size + at);
          at += bytesWritten;
        }
      } catch (err) {
        // A full disk still allows shrinking a file: the part written is cut off again.
        await writer.handle.truncate(writer.size).catch(() => {});
        throw err;
      }
      writer.size += bytes.length;
      writer.unsynced = true;
      this.pendingCount += records.length;
      if (writer.size >= this.segmentBytes) {
        await writer.handle.datasync();
        await writer.handle.close();
        this.writer = null;
      }
    });
  }

  /** Up to `max` records in the order written, or null when everything has been replayed. */
  read(max: number): Promise<SpillBatch | null> {
    return this.serial(() => this.readNext(max));
  }

  close(): Promise<void> {
    return this.serial(async () => {
      try {
        await this.writer?.handle.datasync();
      } finally {
        await this.writer?.handle.close();
        this.writer = null;
      }
    });
  }

  /**
   * Forces what was appended so far onto the disk. Not queued behind appends (an fsync takes
   * milliseconds, and answers wait for appends): it runs beside them, one at a time.
   */
  async sync(): Promise<void> {
    const writer = this.writer;
    if (writer === null || !writer.unsynced || this.syncing) return;
    writer.unsynced = false;
    this.syncing = true;
    try {
      await writer.handle.datasync();
    } catch {
      // Closed meanwhile (a segment replayed or rolled over, synced then), or the disk failed: the next tick tries again.
      writer.unsynced = this.writer === writer;
    } finally {
      this.syncing = false;
    }
  }

  private serial<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.tail.then(operation, operation);
    this.tail = run.catch(() => {});
    return run;
  }

  private async readNext(max: number): Promise<SpillBatch | null> {
    for (;;) {
      if (this.segments.length === 0) return null;
      const seq = this.readSeq;
      const path = this.path(seq);
      const handle = await open(path, 'r');
      try {
        const buffer = Buffer.allocUnsafe(READ_CHUNK);
        const records: LogRecord[] = [];
        let consumed = 0;
        let leftover = Buffer.alloc(0);
        let position = this.readOffset;
        // Up to the size written, not until a read comes back empty: what is not a regular file
        // (a device standing in for a full disk in the tests) never comes back empty.
        const { size } = await handle.stat();
        while (records.length < max && position < size) {
          const { bytesRead } = await handle.read(buffer, 0, Math.min(READ_CHUNK, size - position), position);
          if (bytesRead === 0) break;
          position += bytesRead;
          const data = leftover.length > 0 ? Buffer.concat([leftover, buffer.subarray(0, bytesRead)]) : buffer.subarray(0, bytesRead);
          let start = 0;
          while (records.length < max) {
            const nl = data.indexOf(10, start);
            if (nl === -1) break;
            const record = parseLine(data.toString('utf8', start, nl));
            if (record) records.push(record);
            consumed += nl + 1 - start;
            start = nl + 1;
          }
          leftover = Buffer.from(data.subarray(start));
        }
        if (consumed > 0) {
          const next = this.readOffset + consumed;
          return {
            records,
            commit: async () => {
              this.readOffset = next;
              this.pendingCount = Math.max(0, this.pendingCount - records.length);
            },
          };
        }
      } finally {
        await handle.close();
      }
      // This segment is exhausted.
      if (this.writer?.seq === seq) {
        // Fully replayed, including the segment being written: start over with an empty folder.
        await this.writer.handle.close();
        this.writer = null;
      }
      await rm(path, { force: true });
      this.segments.shift();
      this.readOffset = 0;
      if (this.segments.length === 0) {
        this.readSeq = -1;
        this.pendingCount = 0;
        return null;
      }
      this.readSeq = this.segments[0]!;
    }
  }

  private async writable(): Promise<Writer> {
    if (this.writer) return this.writer;
    const seq = (this.segments.at(-1) ?? 0) + 1;
    const handle = await open(this.path(seq), 'a');
    this.writer = { seq, handle, size: (await handle.stat()).size, unsynced: false };
    this.segments.push(seq);
    if (this.readSeq === -1) {
      this.readSeq = seq;
      this.readOffset = 0;
    }
    return this.writer;
  }

  /** Counts complete lines and cuts off a torn last line left by a crash mid-append. */
  private async repairAndCount(seq: number): Promise<number> {
    const path = this.path(seq);
    const { size } = await stat(path);
    const handle = await open(path, 'r+');
    try {
      const buffer = Buffer.allocUnsafe(READ_CHUNK);
      let lines = 0;
      let lastNewline = -1;
      for (let position = 0; position < size; ) {
        const { bytesRead } = await handle.read(buffer, 0, READ_CHUNK, position);
        if (bytesRead === 0) break;
        for (let i = buffer.indexOf(10, 0); i !== -1 && i < bytesRead; i = buffer.indexOf(10, i + 1)) {
          lines++;
          lastNewline = position + i;
        }
        position += bytesRead;
      }
      if (lastNewline + 1 < size) await handle.truncate(lastNewline + 1);
      return lines;
    } finally {
      await handle.close();
    }
  }

  private path(seq: number): string {
    return join(this.dir, `spill-${String(seq).padStart(12, '0')}.jsonl`);
  }
}

function parseLine(line: string): LogRecord | null {
  const tab = line.indexOf('\t');
  if (tab === -1) return null;
  try {
    const key = JSON.parse(line.slice(0, tab)) as unknown;
    if (typeof key !== 'string') return null;
    return { key, value: line.slice(tab + 1) };
  } catch {
    return null;
  }
}
