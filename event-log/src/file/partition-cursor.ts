import { open, type FileHandle } from 'node:fs/promises';
import type { ConsumedRecord } from '../event-log.ts';
import { isNotFound, type FileLogLayout } from './file-log-layout.ts';
import { HEADER_BYTES, recordCrc, recordKey, recordValue } from './record-format.ts';
import { readRecords } from './segment-reader.ts';
import type { Logger } from '@bunryu/platform/log';

/** A place in a partition, as a consumer group commits it. */
export interface LogPosition {
  /** Offset of the next record to read. */
  offset: number;
  /** Base offset of the segment holding it. */
  segment: number;
  /** Byte position of the next record in that segment. */
  position: number;
  /**
   * Start and checksum of the record before `position`: on resume it proves the bytes under the
   * committed position are still the ones read (a power loss can drop writes a reader had seen).
   */
  last?: [start: number, crc: number];
}

export interface ReadBatch {
  records: ConsumedRecord[];
  /** How many records were read (records stays empty when not decoding). */
  count: number;
  /** The position after the batch: what to commit once it is processed. */
  end: LogPosition;
}

/** Reads one partition forward from a position, following it from segment to segment. */
export class PartitionCursor {
  private fh: FileHandle | undefined;
  private fhSegment = -1;
  private buf: Buffer;
  private reportedCorruption = -1;

  private constructor(
    private readonly layout: FileLogLayout,
    readonly partition: number,
    public at: LogPosition,
    bufferBytes: number,
    private readonly logger: Logger,
  ) {
    this.buf = Buffer.allocUnsafe(bufferBytes);
  }

  /** Places a cursor at a committed position, or at the oldest record kept when there is none. */
  static async open(
    layout: FileLogLayout,
    partition: number,
    committed: LogPosition | undefined,
    bufferBytes: number,
    logger: Logger,
  ): Promise<PartitionCursor> {
    const segments = await layout.segments(partition);
    const oldest = segments[0] ?? 0;
    const cursor = new PartitionCursor(layout, partition, { offset: oldest, segment: oldest, position: 0 }, bufferBytes, logger);
    if (!committed) return cursor;
    if (segments.includes(committed.segment)) {
      if (await cursor.holds(committed)) {
        cursor.at = committed;
      } else {
        logger.warn(
          { partition, committed },
          'event log: the records under the committed position changed (writes lost in a power failure); re-reading the segment from its start',
        );
        cursor.at = { offset: committed.segment, segment: committed.segment, position: 0 };
      }
      return cursor;
    }
    // Retention deleted the committed segment once every group had read all of it: the next one starts at the committed offset.
    const next = segments.find((base) => base >= committed.offset) ?? oldest;
    if (next !== committed.offset) {
      logger.warn({ partition, committed, resumedAt: next }, 'event log: the committed offset is not in the log any more; resuming at the nearest kept segment');
    }
    cursor.at = { offset: next, segment: next, position: 0 };
    return cursor;
  }

  /**
   * Reads the whole records after the cursor (up to the buffer size and maxRecords) and moves
   * past them. Undefined when there is nothing new yet.
   */
  async read(maxRecords: number, decode: boolean): Promise<ReadBatch | undefined> {
    for (;;) {
      const fh = await this.segment(this.at.segment);
      if (!fh) {
        // Not created yet, or deleted by retention before this cursor got to it.
        const later = (await this.layout.segments(this.partition)).find((base) => base > this.at.segment);
        if (later === undefined) return undefined;
        this.at = { offset: later, segment: later, position: 0 };
        continue;
      }
      const first = this.at.offset;
      const records: ConsumedRecord[] = [];
      let lastStart = -1;
      let lastCrc = 0;
      const partition = this.partition;
      const result = await readRecords(
        fh,
        this.at.position,
        this.buf,
        (buf, start, bodyLength) => {
          if (decode) {
            records.push({ key: recordKey(buf, start), value: recordValue(buf, start, bodyLength), partition, offset: String(first + records.length) });
          }
          lastStart = start;
          lastCrc = recordCrc(buf, start);
        },
        maxRecords,
      );
      this.buf = result.buf;
      const { bytes, records: count } = result.scan;
      if (count > 0) {
        const position = this.at.position + bytes;
        this.at = { offset: first + count, segment: this.at.segment, position, last: [this.at.position + lastStart, lastCrc] };
        return { records, count, end: this.at };
      }
      if (result.scan.stop === 'invalid') await this.reportCorruption();
      // Nothing whole here: either nothing was written yet, or the producer moved on to a new
      // segment, which it names after the offset right after this one's last record.
      if (this.at.offset === this.at.segment || !(await this.segment(this.at.offset))) return undefined;
      this.at = { offset: this.at.offset, segment: this.at.offset, position: 0 };
    }
  }

  /**
   * Bad bytes are a torn write the producer cuts on its next open, unless a later segment exists:
   * then they are damage in a sealed segment, and this partition stops here until someone looks.
   */
  private async reportCorruption(): Promise<void> {
    if (this.reportedCorruption === this.at.offset) return;
    const segments = await this.layout.segments(this.partition);
    if (!segments.some((base) => base > this.at.segment)) return;
    this.reportedCorruption = this.at.offset;
    this.logger.error(
      { partition: this.partition, segment: this.layout.segmentPath(this.partition, this.at.segment), position: this.at.position, offset: this.at.offset },
      'event log: a sealed segment holds a damaged record; this partition is stuck before it',
    );
  }

  async close(): Promise<void> {
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
    this.fhSegment = -1;
  }

  /** The open segment `base`, or undefined when it does not exist (yet). */
  private async segment(base: number): Promise<FileHandle | undefined> {
    if (this.fh && this.fhSegment === base) return this.fh;
    let fh: FileHandle;
    try {
      fh = await open(this.layout.segmentPath(this.partition, base), 'r');
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    await this.close();
    this.fh = fh;
    this.fhSegment = base;
    return fh;
  }

  /** True when the record before the committed position is still the one that was read. */
  private async holds(committed: LogPosition): Promise<boolean> {
    if (committed.position === 0) return committed.offset === committed.segment;
    if (!committed.last) return false;
    const fh = await this.segment(committed.segment);
    if (!fh) return false;
    const [start, crc] = committed.last;
    const header = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await fh.read(header, 0, HEADER_BYTES, start);
    if (bytesRead < HEADER_BYTES || start + HEADER_BYTES + header.readUInt32BE(0) !== committed.position || header.readUInt32BE(4) !== crc) return false;
    return (await fh.stat()).size >= committed.position;
  }
}
