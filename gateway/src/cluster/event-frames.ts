/**
 * The binary stream on which a cluster worker hands its events to the primary: a pipe of its own
 * (stdio fd 4), next to the IPC channel that carries control messages. Over IPC every event
 * would be JSON-escaped by the worker and unescaped by the primary, several times the cost of
 * these frames (ADR 0005).
 *
 *   event: u32 keyBytes | u32 valueBytes | key (UTF-8) | value (UTF-8)      (little-endian)
 *   flush: u32 FLUSH_MARK | u32 id
 *
 * A flush frame travels behind the events sent before it, so the primary sees it only once those
 * are in its publisher's queue; it answers `bunryu:flushed` over IPC when they are durable.
 */

/** The worker's file descriptor of the event pipe (after stdin, stdout, stderr and IPC). */
export const EVENT_PIPE_FD = 4;
const FLUSH_MARK = 0xffffffff;
const HEADER_BYTES = 8;
/** More than any event the gateway accepts (bodies stop at 1 MiB): a longer frame is a broken stream. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** The frames of `values[i]` keyed by `keys[i]`, in one buffer (one write on the pipe). */
export function encodeEvents(keys: readonly string[], values: readonly string[]): Buffer {
  const n = keys.length;
  const keyBytes = new Array<number>(n);
  const valueBytes = new Array<number>(n);
  let size = 0;
  for (let i = 0; i < n; i++) {
    keyBytes[i] = Buffer.byteLength(keys[i]!, 'utf8');
    valueBytes[i] = Buffer.byteLength(values[i]!, 'utf8');
    size += HEADER_BYTES + keyBytes[i]! + valueBytes[i]!;
  }
  const buf = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0; i < n; i++) {
    buf.writeUInt32LE(keyBytes[i]!, at);
    buf.writeUInt32LE(valueBytes[i]!, at + 4);
    at += HEADER_BYTES;
    at += buf.write(keys[i]!, at, keyBytes[i]!, 'utf8');
    at += buf.write(values[i]!, at, valueBytes[i]!, 'utf8');
  }
  return buf;
}

export function encodeFlush(id: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_BYTES);
  buf.writeUInt32LE(FLUSH_MARK, 0);
  buf.writeUInt32LE(id >>> 0, 4);
  return buf;
}

export interface FrameHandlers {
  event(key: string, value: string): void;
  flush(id: number): void;
}

/** Reassembles frames from the pipe's chunks, which split them anywhere. */
export class FrameReader {
  private rest: Buffer | null = null;

  constructor(private readonly handlers: FrameHandlers) {}

  /** Bytes of a frame begun but not finished: what a stream that ends here cut off. */
  get pendingBytes(): number {
    return this.rest === null ? 0 : this.rest.length;
  }

  /** Throws on a frame no worker writes (the stream is then unusable). */
  push(chunk: Buffer): void {
    const buf = this.rest === null ? chunk : Buffer.concat([this.rest, chunk]);
    let at = 0;
    while (buf.length - at >= HEADER_BYTES) {
      const keyBytes = buf.readUInt32LE(at);
      const second = buf.readUInt32LE(at + 4);
      if (keyBytes === FLUSH_MARK) {
        at += HEADER_BYTES;
        this.handlers.flush(second);
        continue;
      }
      if (keyBytes + second > MAX_FRAME_BYTES) throw new Error(`event frame of ${keyBytes + second} bytes: not a stream of event frames`);
      const keyEnd = at + HEADER_BYTES + keyBytes;
      const end = keyEnd + second;
      if (end > buf.length) break;
      this.handlers.event(buf.toString('utf8', at + HEADER_BYTES, keyEnd), buf.toString('utf8', keyEnd, end));
      at = end;
    }
    this.rest = at === buf.length ? null : buf.subarray(at);
  }
}
