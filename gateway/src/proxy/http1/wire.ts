import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { BODY_LIMIT } from '@bunryu/platform';

/**
 * What every way the gateway speaks HTTP/1.1 shares: the own server, node:http's fast path, the
 * fastify route and the upstream client. One place for it keeps the three ways a route is served
 * answering the same bytes (a property test holds the own server's answers equal to node:http's).
 */

/** Bodies up to this go out in one write with their head (writeMessage). */
const ONE_WRITE_BYTES = 16 * 1024;

/**
 * Writes a head and its body: a small Buffer body in one string with the head (latin1 keeps every
 * byte as it is), since one write is cheaper than corking two into a writev; anything larger, or
 * a string body (UTF-8), corked as two. Requests to upstreams and the own server's answers both.
 */
export function writeMessage(socket: Socket, head: string, body: Buffer | string | null): void {
  if (body === null || body.length === 0) socket.write(head, 'latin1');
  else if (typeof body !== 'string' && body.length <= ONE_WRITE_BYTES) socket.write(head + body.toString('latin1'), 'latin1');
  else {
    socket.cork();
    socket.write(head, 'latin1');
    if (typeof body === 'string') socket.write(body, 'utf8');
    else socket.write(body);
    socket.uncork();
  }
}

/** Whether an answer to `method` with `status` carries a body (and so a content-length). */
export function answerHasBody(method: string | undefined, status: number): boolean {
  return method !== 'HEAD' && status >= 200 && status !== 204 && status !== 304;
}

/**
 * The head of a whole answer, up to its connection headers: the status line, `headers`
 * (`[lowercase name, value, …]`), the body's length when it has one, and a Date unless given.
 * `tail` ends it (`connection: …\r\n\r\n`).
 */
export function answerHead(method: string, status: number, headers: readonly string[], body: Buffer | string, tail: string): string {
  const noBody = !answerHasBody(method, status);
  let head = 'HTTP/1.1 ' + status + ' ' + (STATUS_CODES[status] ?? 'unknown') + '\r\n';
  let hasDate = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    // The body goes out whole, so its length is known; an answer without one keeps what it was given.
    if (name === 'content-length' && !noBody) continue;
    if (name === 'date') hasDate = true;
    head += name + ': ' + headers[i + 1]! + '\r\n';
  }
  if (!noBody) head += 'content-length: ' + bodyLength(body) + '\r\n';
  if (!hasDate) head += 'date: ' + utcDate() + '\r\n';
  return head + tail;
}

/** `headers` with their content-length set to the body's, for node's ServerResponse (writeHead). */
export function withContentLength(headers: readonly string[], body: Buffer | string): string[] {
  const sized: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i] !== 'content-length') sized.push(headers[i]!, headers[i + 1]!);
  sized.push('content-length', String(bodyLength(body)));
  return sized;
}

function bodyLength(body: Buffer | string): number {
  return typeof body === 'string' ? Buffer.byteLength(body) : body.length;
}

let dateSecond = -1;
let dateText = '';

/** The Date header, formatted once a second (as node:http caches it). */
export function utcDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** Fields a request may hold once; node:http keeps the first of each (IncomingMessage#_addHeaderLine). */
const FIRST_WINS = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after',
  'server', 'user-agent',
]);

/** The lowercase header object node:http would build for these raw headers. */
export function headersObject(raw: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const had = out[name];
    if (had === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (name === 'set-cookie') (had as string[]).push(value);
    else if (FIRST_WINS.has(name)) continue;
    else out[name] = `${had as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out;
}

/** Longest request id kept: the event schema's bound. */
const REQUEST_ID_MAX = 128;

/** The request id: the client's `x-request-id` (within the event schema's bound), else a new UUID, as fastify takes it. */
export function requestIdOf(headers: IncomingHttpHeaders): string {
  const header = headers['x-request-id'];
  return typeof header === 'string' && header.length > 0 ? clipRequestId(header) : randomUUID();
}

/** A request id fastify already took, within the event schema's bound. */
export function clipRequestId(id: string): string {
  return id.slice(0, REQUEST_ID_MAX);
}

/** A declared `content-length` over the body limit: refused (413) before any of the body is read. */
export function declaredTooLarge(contentLength: string | undefined): boolean {
  return contentLength !== undefined && Number(contentLength) > BODY_LIMIT;
}

/**
 * A request body read in chunks, up to the body limit (fastify's `bodyLimit`, the same for every
 * service). An empty body is none, on every way a route is served, so the upstream sees the same
 * request.
 */
export class BodyBuffer {
  private readonly chunks: Buffer[] = [];
  size = 0;

  /** false: past the limit (the chunk is not kept). */
  add(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > BODY_LIMIT) return false;
    this.chunks.push(chunk);
    return true;
  }

  take(): Buffer | null {
    const { chunks } = this;
    return this.size === 0 ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.size);
  }
}

/** A body fastify already read (as one Buffer, never parsed): an empty one is none. */
export function bodyOrNone(body: Buffer | undefined): Buffer | null {
  return body !== undefined && body.length > 0 ? body : null;
}
