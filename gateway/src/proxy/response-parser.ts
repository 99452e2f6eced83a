import { HTTP_TOKEN } from '@bunryu/core';

/** An upstream answer that breaks HTTP/1.1 or the bounds below: the connection is failed. */
export class ResponseParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResponseParseError';
  }
}

/** Bounds on what an upstream may send before it counts as failed. */
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_CHUNK_LINE_BYTES = 4096;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: |$)/;
const DIGITS = /^\d{1,15}$/;
/**
 * Bare CR, LF, NUL and other controls never reach the client (node:http's writeHead refuses them
 * too): looked for once in the whole head, where every CR and LF must be a line's CRLF.
 */
const BAD_HEAD = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/;
const HEX = /^[0-9A-Fa-f]{1,8}$/;
/** An upstream keep-alive hint within this of expiring is not trusted (as undici's keepAliveTimeoutThreshold). */
const HINT_MARGIN_MS = 1000;

type Phase = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'until-close' | 'done';

/**
 * An HTTP/1.1 response parser (RFC 9112) for the gateway's upstream connections: status line,
 * header fields, then a body framed by Content-Length, chunked transfer coding, or the end of the
 * connection. It buffers the body, which the route proxy needs whole anyway (a fallback can still
 * answer when a body fails halfway). It is fed whatever the socket delivers, split anywhere.
 */
export class ResponseParser {
  status = 0;
  /** `[lowercase name, value, …]`, values without surrounding whitespace. */
  headers: string[] = [];
  /** The connection may carry another request once this answer is complete. */
  keepAlive = false;
  /** How long the upstream said it keeps an idle connection (`Keep-Alive: timeout=N`), less a margin; null if it did not say. */
  keepAliveMs: number | null = null;
  /** Bytes that arrived after the answer ended (the connection is then out of step and must not be reused). */
  excess: Buffer | null = null;

  private phase: Phase = 'head';
  private pending: Buffer | null = null;
  private remaining = 0;
  private chunks: Buffer[] = [];
  private size = 0;
  private noBody = false;

  constructor(private readonly maxBodyBytes: number) {}

  /** Ready for the answer to a new request; a HEAD request's answer has no body whatever its headers say. */
  reset(headRequest: boolean): void {
    this.status = 0;
    this.headers = [];
    this.keepAlive = false;
    this.keepAliveMs = null;
    this.excess = null;
    this.phase = 'head';
    this.pending = null;
    this.remaining = 0;
    this.chunks = [];
    this.size = 0;
    this.noBody = headRequest;
  }

  get overrun(): boolean {
    return this.excess !== null;
  }

  get complete(): boolean {
    return this.phase === 'done';
  }

  /** The body is framed by the end of the connection, so a close completes it. */
  get endsWithClose(): boolean {
    return this.phase === 'until-close';
  }

  get body(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
  }

  /** Takes the next bytes; true once the answer is complete. Throws a ResponseParseError on a malformed answer. */
  execute(data: Buffer): boolean {
    let buf = data;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, data]);
      this.pending = null;
    }
    let at = 0;
    for (;;) {
      switch (this.phase) {
        case 'head': {
          const end = buf.indexOf('\r\n\r\n', at, 'latin1');
          if (end === -1 || end - at > MAX_HEAD_BYTES) {
            if (buf.length - at > MAX_HEAD_BYTES) throw new ResponseParseError(`answer head larger than ${MAX_HEAD_BYTES} bytes`);
            return this.wait(buf, at);
          }
          this.head(buf.toString('latin1', at, end));
          at = end + 4;
          break;
        }
        case 'length':
        case 'chunk-data': {
          const n = Math.min(this.remaining, buf.length - at);
          if (n > 0) {
            this.push(at === 0 && n === buf.length ? buf : buf.subarray(at, at + n));
            at += n;
            this.remaining -= n;
          }
          if (this.remaining > 0) return false;
          this.phase = this.phase === 'length' ? 'done' : 'chunk-end';
          break;
        }
        case 'chunk-size': {
          const eol = lineEnd(buf, at, MAX_CHUNK_LINE_BYTES, 'chunk size line too long');
          if (eol === -1) return this.wait(buf, at);
          const line = buf.toString('latin1', at, eol);
          const semicolon = line.indexOf(';');
          const hex = (semicolon === -1 ? line : line.slice(0, semicolon)).trim();
          if (!HEX.test(hex)) throw new ResponseParseError(`bad chunk size "${hex.slice(0, 16)}"`);
          const size = parseInt(hex, 16);
          at = eol + 2;
          if (size === 0) this.phase = 'trailers';
          else {
            this.remaining = size;
            this.phase = 'chunk-data';
          }
          break;
        }
        case 'chunk-end': {
          if (buf.length - at < 2) return this.wait(buf, at);
          if (buf[at] !== 13 || buf[at + 1] !== 10) throw new ResponseParseError('chunk data not followed by CRLF');
          at += 2;
          this.phase = 'chunk-size';
          break;
        }
        case 'trailers': {
          // Trailer fields are read past and dropped: the answer is forwarded with a length.
          const eol = lineEnd(buf, at, MAX_HEAD_BYTES, 'trailer section too long');
          if (eol === -1) return this.wait(buf, at);
          this.phase = eol === at ? 'done' : 'trailers';
          at = eol + 2;
          break;
        }
        case 'until-close':
          if (at < buf.length) this.push(at === 0 ? buf : buf.subarray(at));
          return false;
        case 'done':
          if (at < buf.length) this.excess = this.excess === null ? buf.subarray(at) : Buffer.concat([this.excess, buf.subarray(at)]);
          return true;
      }
    }
  }

  private wait(buf: Buffer, at: number): false {
    this.pending = at === 0 ? buf : buf.subarray(at);
    return false;
  }

  private push(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.size > this.maxBodyBytes) throw new ResponseParseError(`answer larger than ${this.maxBodyBytes} bytes`);
    this.chunks.push(chunk);
  }

  /** The status line and header fields; decides how the body is framed (RFC 9112 §6.3). */
  private head(text: string): void {
    if (BAD_HEAD.test(text)) throw new ResponseParseError('control characters in the answer head');
    const lines = text.split('\r\n');
    const m = STATUS_LINE.exec(lines[0]!);
    if (!m) throw new ResponseParseError(`bad status line "${lines[0]!.slice(0, 64)}"`);
    const status = Number(m[2]);
    const headers: string[] = [];
    let length = -1;
    let transferEncoding: string | null = null;
    let connection = '';
    let keepAliveHint: string | null = null;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon).toLowerCase() : '';
      // Also refuses obsolete line folding: a continuation line starts with whitespace, never a token.
      if (!HTTP_TOKEN.test(name)) throw new ResponseParseError(`bad header line "${line.slice(0, 64)}"`);
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') {
        if (!DIGITS.test(value) || (length !== -1 && length !== Number(value))) throw new ResponseParseError(`bad content-length "${value.slice(0, 32)}"`);
        length = Number(value);
      } else if (name === 'transfer-encoding') {
        transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`;
      } else if (name === 'connection') {
        connection = connection === '' ? value.toLowerCase() : `${connection}, ${value.toLowerCase()}`;
      } else if (name === 'keep-alive') {
        keepAliveHint = value;
      }
      headers.push(name, value);
    }
    if (status < 200) {
      // 1xx answers come before the real one; 101 would switch protocols, which is never asked for.
      if (status === 101) throw new ResponseParseError('unexpected 101 Switching Protocols');
      return;
    }
    this.status = status;
    this.headers = headers;
    this.keepAlive = m[1] === '1' ? !hasToken(connection, 'close') : hasToken(connection, 'keep-alive');
    if (keepAliveHint !== null) this.keepAliveMs = hintMs(keepAliveHint);
    if (this.noBody || status === 204 || status === 304) {
      this.phase = 'done';
    } else if (transferEncoding !== null) {
      // Both framings at once is how requests get smuggled: take chunked, never reuse the connection.
      if (length !== -1) this.keepAlive = false;
      const codings = transferEncoding.toLowerCase().split(',');
      if (codings[codings.length - 1]!.trim() === 'chunked') this.phase = 'chunk-size';
      else {
        this.phase = 'until-close';
        this.keepAlive = false;
      }
    } else if (length !== -1) {
      if (length > this.maxBodyBytes) throw new ResponseParseError(`answer larger than ${this.maxBodyBytes} bytes`);
      this.remaining = length;
      this.phase = length === 0 ? 'done' : 'length';
    } else {
      this.phase = 'until-close';
      this.keepAlive = false;
    }
  }
}

function hasToken(list: string, token: string): boolean {
  if (list === '') return false;
  for (const t of list.split(',')) if (t.trim() === token) return true;
  return false;
}

function hintMs(value: string): number | null {
  const m = /(?:^|[,\s])timeout=(\d+)/i.exec(value);
  return m ? Math.max(0, Number(m[1]) * 1000 - HINT_MARGIN_MS) : null;
}

/** Where the CRLF ending the line at `at` starts; -1 while it has not all arrived. Past `max` bytes without one the answer is refused. */
function lineEnd(buf: Buffer, at: number, max: number, tooLong: string): number {
  const eol = buf.indexOf('\r\n', at, 'latin1');
  if (eol === -1 && buf.length - at > max) throw new ResponseParseError(tooLong);
  return eol;
}
