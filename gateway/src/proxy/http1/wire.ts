import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { createError, type BunryuError } from '@bunryu/core';
import { BODY_LIMIT } from '@bunryu/platform';

/**
 * The HTTP/1.1 pieces every way the gateway serves or forwards a request shares: writing a
 * message, the Date header, header objects, which answers have a body, the request id and the
 * body limit. The own server (own-server.ts), node:http's fast path (../fast-path.ts), the fastify
 * routes (../proxy-routes.ts) and the upstream client (../upstream-client.ts) all use these.
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

/** Whether an answer to `method` with `status` carries a body (and so a content-length). */
export function answerHasBody(method: string | undefined, status: number): boolean {
  return method !== 'HEAD' && status >= 200 && status !== 204 && status !== 304;
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

/**
 * The request id: the client's `x-request-id` (within the event schema's bound), else `generated`
 * (fastify's own id on its routes, which makes the same choice) or a new UUID.
 */
export function requestIdOf(headers: IncomingHttpHeaders, generated?: string): string {
  const header = headers['x-request-id'];
  if (typeof header === 'string' && header.length > 0) return header.slice(0, 128);
  return generated ?? randomUUID();
}

/** A declared `content-length` over the body limit (SPEC §8: 413): refused before any byte of the body. */
export function declaredTooLarge(contentLength: string | undefined): boolean {
  return contentLength !== undefined && Number(contentLength) > BODY_LIMIT;
}

export function bodyTooLarge(): BunryuError {
  return createError('BUNRYU_PAYLOAD_TOO_LARGE');
}

/** A request body as it arrives, within the body limit. */
export class BodyBuffer {
  size = 0;
  private readonly chunks: Buffer[] = [];

  /** false once the body has outgrown the limit (the chunk is not kept). */
  add(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > BODY_LIMIT) return false;
    this.chunks.push(chunk);
    return true;
  }

  /** The whole body; null when there is none, as an empty body is no body to the upstream either. */
  take(): Buffer | null {
    const { chunks } = this;
    return this.size === 0 ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.size);
  }
}
