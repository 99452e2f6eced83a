import { crc32 } from 'node:zlib';

/**
 * One record on disk (big-endian):
 *
 *   u32 bodyLength | u32 crc32(body) | body = u32 keyLength | key (UTF-8) | value (UTF-8)
 *
 * The length prefix lets a reader skip without parsing and the checksum tells a torn or
 * half-written tail from a record (docs/adr/0001-embedded-event-log.md).
 */
export const HEADER_BYTES = 8;
const KEY_LENGTH_BYTES = 4;
/** Anything longer is garbage from a torn write, not a record. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

export function recordBytes(keyBytes: number, valueBytes: number): number {
  return HEADER_BYTES + KEY_LENGTH_BYTES + keyBytes + valueBytes;
}

/** Writes one record at `at` (the caller sized `buf` with recordBytes) and returns where the next one starts. */
export function encodeRecord(buf: Buffer, at: number, key: Uint8Array, value: string, valueBytes: number): number {
  const body = at + HEADER_BYTES;
  const bodyLength = KEY_LENGTH_BYTES + key.length + valueBytes;
  if (bodyLength > MAX_BODY_BYTES) throw new RangeError(`a record may hold at most ${MAX_BODY_BYTES} bytes, got ${bodyLength}`);
  buf.writeUInt32BE(bodyLength, at);
  buf.writeUInt32BE(key.length, body);
  buf.set(key, body + KEY_LENGTH_BYTES);
  buf.write(value, body + KEY_LENGTH_BYTES + key.length, valueBytes, 'utf8');
  buf.writeUInt32BE(crc32(buf.subarray(body, body + bodyLength)), at + 4);
  return body + bodyLength;
}

export interface ScanResult {
  /** Bytes taken by the complete, valid records found. */
  bytes: number;
  records: number;
  /** Why the scan stopped before `length`: a record cut short, or bytes that are no record. */
  stop: 'end' | 'incomplete' | 'invalid' | 'limit';
  /** For 'incomplete': the size of the record cut short, so the caller can read it whole. */
  needed: number;
}

/**
 * Walks the complete, valid records in buf[0, length), calling `visit` with each one's start
 * and body length, until `maxRecords`.
 */
export function scanRecords(
  buf: Buffer,
  length: number,
  visit?: (buf: Buffer, start: number, bodyLength: number) => void,
  maxRecords = Number.POSITIVE_INFINITY,
): ScanResult {
  let at = 0;
  let records = 0;
  while (at < length) {
    if (records >= maxRecords) return { bytes: at, records, stop: 'limit', needed: 0 };
    if (length - at < HEADER_BYTES) return { bytes: at, records, stop: 'incomplete', needed: HEADER_BYTES };
    const bodyLength = buf.readUInt32BE(at);
    if (bodyLength < KEY_LENGTH_BYTES || bodyLength > MAX_BODY_BYTES) return { bytes: at, records, stop: 'invalid', needed: 0 };
    const size = HEADER_BYTES + bodyLength;
    if (length - at < size) return { bytes: at, records, stop: 'incomplete', needed: size };
    const body = at + HEADER_BYTES;
    if (buf.readUInt32BE(body) > bodyLength - KEY_LENGTH_BYTES || crc32(buf.subarray(body, body + bodyLength)) !== buf.readUInt32BE(at + 4)) {
      return { bytes: at, records, stop: 'invalid', needed: 0 };
    }
    visit?.(buf, at, bodyLength);
    records++;
    at += size;
  }
  return { bytes: at, records, stop: 'end', needed: 0 };
}

export function recordKey(buf: Buffer, start: number): string {
  const keyStart = start + HEADER_BYTES + KEY_LENGTH_BYTES;
  return buf.toString('utf8', keyStart, keyStart + buf.readUInt32BE(start + HEADER_BYTES));
}

export function recordValue(buf: Buffer, start: number, bodyLength: number): string {
  const keyStart = start + HEADER_BYTES + KEY_LENGTH_BYTES;
  return buf.toString('utf8', keyStart + buf.readUInt32BE(start + HEADER_BYTES), start + HEADER_BYTES + bodyLength);
}

export function recordCrc(buf: Buffer, start: number): number {
  return buf.readUInt32BE(start + 4);
}
