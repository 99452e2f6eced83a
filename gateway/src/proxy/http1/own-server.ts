import { IncomingMessage, STATUS_CODES, ServerResponse, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { lingeringClose } from '@bunryu/platform';
import { ROUTES_PREFIX, isRouteUrl, sendError, type ProxyReply, type ProxyRequest } from '../route-proxy.ts';
import type { FastPathTarget } from '../fast-path.ts';
import type { NodeHttpParser, ParserModule } from './node-parser.ts';
import { BodyBuffer, answerHasBody, bodyTooLarge, declaredTooLarge, headersObject, requestIdOf, utcDate, writeMessage } from './wire.ts';

/**
 * The gateway's own HTTP/1.1 server for connections that come for `/v1/routes/…`: node's request
 * parser (llhttp, the one node:http runs) on the raw socket, and answers written as one string
 * and one buffer. It skips node:http's per-request IncomingMessage and ServerResponse streams,
 * a large share of a proxied request's CPU (ADR 0004).
 *
 * A connection is looked at once, on its first bytes: if its first request is for a route it is
 * served here for its whole life, other requests on it going to fastify's handler with node's
 * own request and response objects on the socket; any other connection is handed to node:http
 * untouched. Node exports its parser only from an internal module (node-parser.ts); when that
 * is missing or behaves differently, every connection goes to node:http, which serves routes
 * too, only slower.
 */

/** node:http's request listener: fastify's handler, given node's own request and response objects. */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface RawHttpOptions {
  target: FastPathTarget;
  /** Node's request parser, once it passed its check (loadNodeParser). */
  parser: ParserModule;
  /** An idle keep-alive connection closes after this (fastify's keepAliveTimeout). */
  keepAliveTimeoutMs: number;
  /** A request must arrive whole (headers and body) within this of its first byte (node's headersTimeout). */
  requestTimeoutMs?: number;
  maxHeaderSize?: number;
  /** false: read through the socket's 'data' events, as on a Node whose parser cannot consume a socket. */
  consume?: boolean;
}

/** Largest request line prefix looked at before deciding: `OPTIONS /v1/routes/`. */
const DECIDE_BYTES = 'OPTIONS '.length + ROUTES_PREFIX.length;
/** Requests parsed ahead of their turn (pipelining): past this the connection answers those and closes. */
const MAX_QUEUED = 16;
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
export class RawHttpServer {
  closing = false;
  readonly keepAliveHeader: string;
  private readonly connections = new Set<RawConnection>();
  private readonly undecided = new Set<Socket>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(readonly options: RawHttpOptions) {
    this.keepAliveHeader = `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(options.keepAliveTimeoutMs / 1000)}\r\n\r\n`;
    this.sweeper = setInterval(() => this.sweep(), 1000).unref();
  }

  get requestTimeoutMs(): number {
    return this.options.requestTimeoutMs ?? 60_000;
  }

  /** A new connection: served here if its first request is for a route, else given to `handOff` (node:http). */
  accept(socket: Socket, handOff: (socket: Socket) => void): void {
    if (this.closing || this.options.target.proxy === null || this.options.target.handler === null) return handOff(socket);
    this.undecided.add(socket);
    let seen: Buffer | null = null;
    const decide = (chunk: Buffer) => {
      seen = seen === null ? chunk : Buffer.concat([seen, chunk]);
      const verdict = routeRequestLine(seen);
      if (verdict === null) return;
      socket.removeListener('data', decide);
      socket.removeListener('close', forget);
      socket.setTimeout(0);
      this.undecided.delete(socket);
      if (verdict) {
        this.connections.add(new RawConnection(this, socket, seen));
        return;
      }
      // As httpolyglot hands a peeked socket on: the bytes go back in front, node:http reads them first.
      socket.pause();
      socket.unshift(seen);
      handOff(socket);
      process.nextTick(() => socket.resume());
    };
    const forget = () => this.undecided.delete(socket);
    socket.on('data', decide);
    socket.once('close', forget);
    socket.on('error', () => {});
    socket.setTimeout(this.requestTimeoutMs, () => socket.destroy());
  }

  dropped(connection: RawConnection): void {
    this.connections.delete(connection);
  }

  /** Shutting down: idle connections close now, busy ones after their answer. */
  closeIdle(): void {
    this.closing = true;
    clearInterval(this.sweeper);
    for (const socket of this.undecided) socket.destroy();
    for (const connection of this.connections) connection.closeIfIdle();
  }

  private sweep(): void {
    const now = Date.now();
    for (const connection of this.connections) connection.checkRequestTimeout(now);
  }
}

/** true: the first request is for a route; false: it is not (or is no HTTP); null: too few bytes yet. */
function routeRequestLine(buf: Buffer): boolean | null {
  const space = buf.indexOf(32);
  if (space === -1) return buf.length >= DECIDE_BYTES ? false : null;
  const have = buf.toString('latin1', space + 1, Math.min(buf.length, space + 1 + ROUTES_PREFIX.length));
  if (have.length < ROUTES_PREFIX.length) return ROUTES_PREFIX.startsWith(have) ? null : false;
  return have === ROUTES_PREFIX;
}

interface Pending {
  method: string;
  url: string;
  rawHeaders: string[];
  /** HTTP/1.<minor>. */
  minor: number;
  keepAlive: boolean;
  upgrade: boolean;
  body: BodyBuffer;
  /**
   * Set when the request is not served but refused with this status, after which the connection
   * closes: 413 (body too large), 431 (head too large), 400 (malformed: nothing of it is known)
   * or 408 (not whole in time).
   */
  refusal: 413 | 431 | 400 | 408 | null;
}

function pending(method: string, url: string, rawHeaders: string[], minor: number, keepAlive: boolean, upgrade: boolean): Pending {
  return { method, url, rawHeaders, minor, keepAlive, upgrade, body: new BodyBuffer(), refusal: null };
}

class RawRequest implements ProxyRequest {
  private parsed: IncomingHttpHeaders | null = null;

  constructor(
    readonly method: string,
    readonly url: string,
    readonly rawHeaders: string[],
  ) {}

  get headers(): IncomingHttpHeaders {
    return (this.parsed ??= headersObject(this.rawHeaders));
  }
}

class RawConnection {
  private readonly parser: NodeHttpParser;
  private current: Pending | null = null;
  private partialHeaders: string[] = [];
  private partialUrl = '';
  private readonly queue: Pending[] = [];
  private busy = false;
  /** No more requests are read: the client ended, a request was refused, or the answer said close. */
  private stopped = false;
  private closed = false;
  private messageStartedAt = 0;
  /** The parser reads from the socket's handle itself (parser.consume). */
  private consumed = false;
  /** A request still being read that asked for `100 Continue` while others were ahead of it. */
  private continueDue: Pending | null = null;

  constructor(
    private readonly server: RawHttpServer,
    private readonly socket: Socket,
    first: Buffer,
  ) {
    const { HTTPParser, methods } = server.options.parser;
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.REQUEST, {}, server.options.maxHeaderSize ?? 16 * 1024, 0);
    parser[HTTPParser.kOnMessageBegin] = () => {
      this.messageStartedAt = Date.now();
    };
    // Past 32 fields llhttp hands headers over in parts, before headers-complete gets none.
    parser[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
      for (const h of headers) this.partialHeaders.push(h);
      this.partialUrl += url;
    };
    parser[HTTPParser.kOnHeadersComplete] = (
      _major: number,
      minor: number,
      headers: string[] | undefined,
      method: number,
      url: string | undefined,
      _status: unknown,
      _message: unknown,
      upgrade: boolean,
      keepAlive: boolean,
    ) => {
      const rawHeaders = headers ?? this.partialHeaders;
      this.partialHeaders = [];
      const fullUrl = url ?? this.partialUrl;
      this.partialUrl = '';
      // The parser may read on after the connection stopped taking requests: those are dropped.
      if (this.stopped) return 0;
      this.onHeaders(pending(methods[method] ?? 'GET', fullUrl, rawHeaders, minor, keepAlive, upgrade));
      return 0;
    };
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => {
      const p = this.current;
      if (p === null || p.refusal !== null) return;
      if (!p.body.add(chunk)) this.refuse(p);
    };
    parser[HTTPParser.kOnMessageComplete] = () => {
      const p = this.current;
      this.current = null;
      this.messageStartedAt = 0;
      if (p === null || p.refusal !== null) return;
      this.enqueue(p);
    };
    this.parser = parser;
    socket.setNoDelay(true);
    // Only an idle connection times out: a request being read has the request timeout, one being answered the route's.
    socket.setTimeout(server.options.keepAliveTimeoutMs, () => {
      if (!this.busy && this.queue.length === 0 && this.current === null) socket.destroy();
    });
    socket.on('end', () => {
      this.stopped = true;
      this.closeIfIdle();
    });
    socket.on('close', () => this.onClose());
    this.read(first);
    // What arrives next goes to the parser without a JS Buffer and stream events per read, as in
    // node:http; a Node without it reads through 'data' events.
    const handle = (socket as unknown as { _handle?: object | null })._handle;
    if (server.options.consume !== false && typeof parser.consume === 'function' && handle && !this.closed) {
      parser[HTTPParser.kOnExecute] = (result: number | Error) => {
        if (typeof result !== 'number') this.malformed(result);
      };
      parser.consume(handle);
      this.consumed = true;
    } else {
      socket.on('data', (chunk: Buffer) => this.read(chunk));
    }
  }

  closeIfIdle(): void {
    if (!this.busy && this.queue.length === 0 && this.current === null) this.end();
    else this.stopped ||= this.server.closing;
  }

  checkRequestTimeout(now: number): void {
    if (this.messageStartedAt !== 0 && now - this.messageStartedAt > this.server.requestTimeoutMs && !this.stopped) {
      this.stopped = true;
      this.messageStartedAt = 0;
      this.current = null;
      this.enqueueError(408);
    }
  }

  private read(chunk: Buffer): void {
    if (this.stopped || this.closed) return;
    const result = this.parser.execute(chunk);
    if (typeof result !== 'number') this.malformed(result);
  }

  /**
   * Answered after the requests before it, 431 for a head over the size limit and 400 for the
   * rest, then the connection closes (as node:http does).
   */
  private malformed(error: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.current = null;
    this.enqueueError((error as Error & { code?: string }).code === 'HPE_HEADER_OVERFLOW' ? 431 : 400);
  }

  private onHeaders(p: Pending): void {
    this.current = p;
    if (p.upgrade) {
      // No protocol is switched to here (node:http without an 'upgrade' listener closes too).
      this.stopped = true;
      this.socket.destroy();
      return;
    }
    let expectContinue = false;
    for (let i = 0; i < p.rawHeaders.length; i += 2) {
      const name = p.rawHeaders[i]!;
      if (name.length === 14 && name.toLowerCase() === 'content-length' && declaredTooLarge(p.rawHeaders[i + 1])) return this.refuse(p);
      if (name.length === 6 && name.toLowerCase() === 'expect' && p.rawHeaders[i + 1]!.toLowerCase() === '100-continue') expectContinue = p.minor >= 1;
    }
    // A 100 belongs to the request being answered: one queued behind others gets it in its turn,
    // if its body has not arrived by then (node:http does the same).
    if (expectContinue) {
      if (!this.busy && this.queue.length === 0) this.socket.write(CONTINUE, 'latin1');
      else this.continueDue = p;
    }
  }

  /** Too large: answered 413 in its turn, nothing after it is read, and the connection closes. */
  private refuse(p: Pending): void {
    p.refusal = 413;
    this.stopped = true;
    this.enqueue(p);
  }

  private enqueueError(status: 400 | 408 | 431): void {
    const p = pending('GET', '', [], 1, false, false);
    p.refusal = status;
    this.enqueue(p);
  }

  private enqueue(p: Pending): void {
    // With the parser reading the socket itself there is no pausing it: a client this far ahead is cut off.
    if (this.queue.length >= MAX_QUEUED) this.stopped = true;
    else this.queue.push(p);
    if (!this.busy) this.next();
  }

  private next(): void {
    const p = this.queue.shift();
    if (p === undefined) {
      if (this.stopped) return this.end();
      // Its turn has come and it still waits for the go-ahead to send its body.
      if (this.continueDue !== null && this.continueDue === this.current) this.socket.write(CONTINUE, 'latin1');
      this.continueDue = null;
      return;
    }
    this.busy = true;
    this.serve(p);
  }

  private serve(p: Pending): void {
    const reply = new RawReply(this, p);
    // Nothing is known of a request that could not be parsed or did not arrive in time.
    if (p.refusal === 400 || p.refusal === 408 || p.refusal === 431) return reply.send(p.refusal, ['content-type', 'text/plain; charset=utf-8'], STATUS_CODES[p.refusal]!);
    const request = new RawRequest(p.method, p.url, p.rawHeaders);
    if (p.refusal === 413) return sendError(reply, bodyTooLarge(), requestIdOf(request.headers));
    const body = p.body.take();
    if (isRouteUrl(p.url)) return this.server.options.target.proxy!.serve(request, reply, requestIdOf(request.headers), body);
    // fastify takes the request id itself.
    this.toHandler(p, request.headers, body);
  }

  /**
   * Any other request: node:http's own request and response objects on this socket, handed to
   * fastify's handler as node:http hands them, so it is answered as on a connection of its own,
   * at the same cost (fastify's `inject` cost more than twice as much). A property test holds its
   * answers equal to node:http's.
   */
  private toHandler(p: Pending, headers: IncomingHttpHeaders, body: Buffer | null): void {
    const { socket } = this;
    const req = new IncomingMessage(socket);
    req.httpVersionMajor = 1;
    req.httpVersionMinor = p.minor;
    req.httpVersion = `1.${p.minor}`;
    req.method = p.method;
    req.url = p.url;
    req.rawHeaders = p.rawHeaders;
    req.headers = headers;
    req.complete = true;
    if (body !== null) req.push(body);
    req.push(null);
    const res = new ServerResponse(req);
    res.shouldKeepAlive = this.keepsAlive(p);
    // node:http's server sets it on every response: it is what writes `Keep-Alive: timeout=…`.
    (res as ServerResponse & { _keepAliveTimeout?: number })._keepAliveTimeout = this.server.options.keepAliveTimeoutMs;
    res.assignSocket(socket);
    res.once('finish', () => {
      res.detachSocket(socket);
      // An answer that said close (asked for, HTTP/1.0 without keep-alive, or no length to
      // frame it by) ends the connection: node marks it `_last`, as its own server reads it.
      if ((res as ServerResponse & { _last?: boolean })._last === true) this.stopAfterThis();
      process.nextTick(() => res.emit('close'));
      this.done();
    });
    this.server.options.target.handler!(req, res);
  }

  /** Writes one answer; the next queued request is served after it. */
  write(p: Pending, status: number, headers: string[], body: Buffer | string): void {
    if (this.closed) return this.done();
    const noBody = !answerHasBody(p.method, status);
    let head = 'HTTP/1.1 ' + status + ' ' + (STATUS_CODES[status] ?? 'unknown') + '\r\n';
    let hasDate = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      // The body goes out whole, so its length is known; an answer without one keeps what it was given.
      if (name === 'content-length' && !noBody) continue;
      if (name === 'date') hasDate = true;
      head += name + ': ' + headers[i + 1]! + '\r\n';
    }
    if (!noBody) head += 'content-length: ' + (typeof body === 'string' ? Buffer.byteLength(body) : body.length) + '\r\n';
    if (!hasDate) head += 'date: ' + utcDate() + '\r\n';
    const keepAlive = this.keepsAlive(p);
    if (!keepAlive) this.stopAfterThis();
    head += keepAlive ? this.server.keepAliveHeader : 'connection: close\r\n\r\n';
    writeMessage(this.socket, head, noBody ? null : body);
    this.done();
  }

  /**
   * Whether the answer to `p` leaves the connection open. Stopped means it closes once what was
   * read is answered: the last answer says so.
   */
  private keepsAlive(p: Pending): boolean {
    return p.keepAlive && !this.server.closing && !(this.stopped && this.queue.length === 0);
  }

  /** The answer being written is the connection's last: nothing after it is read or answered. */
  private stopAfterThis(): void {
    this.stopped = true;
    this.queue.length = 0;
  }

  abort(): void {
    this.socket.destroy();
    this.done();
  }

  private done(): void {
    this.busy = false;
    this.next();
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    // A refused body or head may still be arriving: read it off (bounded) so the client gets the
    // answer rather than a reset, and a client that never closes its side is not waited for.
    lingeringClose(this.socket);
  }

  private onClose(): void {
    this.closed = true;
    this.stopped = true;
    this.queue.length = 0;
    this.server.dropped(this);
    const parser = this.parser;
    if (this.consumed) parser.unconsume?.();
    // Not from inside one of its own callbacks.
    setImmediate(() => parser.close());
  }
}

class RawReply implements ProxyReply {
  sent = false;

  constructor(
    private readonly connection: RawConnection,
    private readonly pending: Pending,
  ) {}

  send(status: number, headers: string[], body: Buffer | string): void {
    if (this.sent) return;
    this.sent = true;
    this.connection.write(this.pending, status, headers, body);
  }

  abort(): void {
    if (this.sent) return;
    this.sent = true;
    this.connection.abort();
  }
}

