import type { FileHandle } from 'node:fs/promises';
import { scanRecords, type ScanResult } from './record-format.ts';

export interface ReadResult {
  /** The buffer holding the records: the one given, or a larger one when a record did not fit. */
  buf: Buffer;
  bytesRead: number;
  scan: ScanResult;
}

/** Reads from `position` and walks the whole, valid records found there. */
export async function readRecords(
  fh: FileHandle,
  position: number,
  buf: Buffer,
  visit?: (buf: Buffer, start: number, bodyLength: number) => void,
  maxRecords?: number,
): Promise<ReadResult> {
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, position);
    const scan = scanRecords(buf, bytesRead, visit, maxRecords);
    if (scan.records === 0 && scan.stop === 'incomplete' && bytesRead === buf.length && scan.needed > buf.length) {
      buf = Buffer.allocUnsafe(scan.needed);
      continue;
    }
    return { buf, bytesRead, scan };
  }
}

/** True when the read may have stopped at the buffer's end rather than at the data's end. */
export function mayContinue(result: ReadResult): boolean {
  return result.scan.bytes > 0 && result.bytesRead === result.buf.length && (result.scan.stop === 'end' || result.scan.stop === 'incomplete');
}

/**
 * Walks a segment from `position` to the end of its valid records. Returns where they end and
 * how many there are; what follows (a write in progress, or a torn one) is not counted.
 */
export async function scanToEnd(fh: FileHandle, position: number): Promise<{ end: number; records: number }> {
  let buf: Buffer = Buffer.allocUnsafe(1 << 20);
  let records = 0;
  for (;;) {
    const result = await readRecords(fh, position, buf);
    buf = result.buf;
    position += result.scan.bytes;
    records += result.scan.records;
    if (!mayContinue(result)) return { end: position, records };
  }
}
