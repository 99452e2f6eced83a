import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { writeMessage } from './http1/wire.ts';
import { ResponseParser } from './response-parser.ts';

export interface ForwardRequest {
  method: string;
  /** Path and query, already joined with the upstream's base path. */
  path: string;
  /**
   * Flat `[name, value, name, value…]`, written as they are: they come from node's request
   * parser or from the gateway, and must not hold CR, LF or NUL.
   */
  headers: string[];
  body: Buffer | string | null;
}

export interface UpstreamResponse {
  status: number;
  /** Flat `[lowercase name, value…]` as received. */
  headers: string[];
  body: Buffer;
}

export type UpstreamFailureKind = 'timeout' | 'failed';

export class UpstreamFailure extends Error {
  constructor(
    readonly kind: UpstreamFailureKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpstreamFailure';
  }
}

/** The outcome of one request: a failure, or else the answer. */
export type Done = (failure: UpstreamFailure | null, response: UpstreamResponse | null) => void;

/** Answers are buffered; one larger than this is a failure rather than a memory hazard. */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

export interface OriginOptions {
  /** Most connections open at once; requests beyond wait for one in order. */
  connections: number;
  /** Idle connections close after this when the upstream gives no Keep-Alive hint. */
  keepAliveMs?: number;
  /** Upper bound on an upstream's Keep-Alive hint. */
  keepAliveMaxMs?: number;
  /** For https upstreams (a CA for a private one, say). */
  tls?: ConnectionOptions;
}

/** Methods whose request carries a body by definition: sent with `content-length: 0` when empty, as undici does. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Keep-alive HTTP/1.1 connections to one upstream origin, one request at a time on each. The
 * gateway's own client on node:net rather than undici's Pool: forwarding needs a fraction of
 * undici's machinery (no streaming, no redirects, no pipelining, headers that node's request
 * parser already checked), and what it skips is a measurable share of a request's CPU (ADR 0004).
 */
export class HttpOrigin {
  /** The Host header for this origin. */
  readonly host: string;
  private readonly hostname: string;
  private readonly port: number;
  private readonly secure: boolean;
  /** Warm connections, the most recently used last. */
  private readonly idle: Connection[] = [];
  private readonly waiting: Exchange[] = [];
  private open = 0;
  private closed = false;
  private onDrained: (() => void) | null = null;
  private readonly sweeper: NodeJS.Timeout;
  readonly keepAliveMs: number;
  readonly keepAliveMaxMs: number;

  constructor(
    origin: string,
    private readonly options: OriginOptions,
  ) {
    const url = new URL(origin);
    this.secure = url.protocol === 'https:';
    this.hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port === '' ? (this.secure ? 443 : 80) : Number(url.port);
    this.host = url.host;
    this.keepAliveMs = options.keepAliveMs ?? 30_000;
    this.keepAliveMaxMs = options.keepAliveMaxMs ?? 600_000;
    // Expiry is checked when a connection is taken; the sweep only closes the ones left idle.
    this.sweeper = setInterval(() => this.sweep(), 1000).unref();
  }

  /** `send` as a promise. */
  request(request: ForwardRequest, timeoutMs: number): Promise<UpstreamResponse> {
    return new Promise<UpstreamResponse>((resolve, reject) => this.send(request, timeoutMs, (failure, response) => (failure !== null ? reject(failure) : resolve(response!))));
  }

  /**
   * Sends one request and buffers the answer; the deadline covers waiting, connecting, headers and
   * body. `done` is called once, never synchronously.
   */
  send(request: ForwardRequest, timeoutMs: number, done: Done): void {
    const exchange = new Exchange(request, this.host, done, timeoutMs);
    if (this.closed) return void process.nextTick(() => exchange.fail('failed', 'upstream client closed'));
    const now = Date.now();
    while (this.idle.length > 0) {
      const connection = this.idle.pop()!;
      if (connection.expiresAt > now) return connection.run(exchange);
      connection.destroy();
    }
    if (this.open < this.options.connections) return this.connect().run(exchange);
    this.waiting.push(exchange);
  }

  /** Open connections (idle or busy). */
  get size(): number {
    return this.open;
  }

  /** Stops taking requests; resolves once requests in flight are answered and every connection is closed. */
  close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const exchange of this.waiting.splice(0)) exchange.fail('failed', 'upstream client closed');
    for (const connection of this.idle.splice(0)) connection.destroy();
    if (this.open === 0) return Promise.resolve();
    return new Promise((resolve) => (this.onDrained = resolve));
  }

  /** A connection finished an answer and can carry another. */
  release(connection: Connection): void {
    if (this.closed) return connection.destroy();
    const next = this.nextWaiting();
    if (next !== undefined) connection.run(next);
    else this.idle.push(connection);
  }

  /** A connection closed, whatever the reason. */
  lost(connection: Connection): void {
    this.open--;
    const i = this.idle.indexOf(connection);
    if (i !== -1) this.idle.splice(i, 1);
    const next = this.closed ? undefined : this.nextWaiting();
    if (next !== undefined) this.connect().run(next);
    else if (this.open === 0) this.onDrained?.();
  }

  /** The longest-waiting request whose deadline has not passed. */
  private nextWaiting(): Exchange | undefined {
    let next = this.waiting.shift();
    while (next !== undefined && next.settled) next = this.waiting.shift();
    return next;
  }

  private connect(): Connection {
    this.open++;
    const socket = this.secure
      ? connectTls({ host: this.hostname, port: this.port, servername: this.hostname, ...this.options.tls })
      : connectTcp({ host: this.hostname, port: this.port });
    return new Connection(this, socket, this.secure);
  }

  private sweep(): void {
    const now = Date.now();
    for (const connection of this.idle.slice()) if (connection.expiresAt <= now) connection.destroy();
  }
}

/** One socket and the exchange it carries, if any. */
class Connection {
  expiresAt = 0;
  private exchange: Exchange | null = null;
  private connected = false;
  private dead = false;
  private error: Error | null = null;
  private readonly parser = new ResponseParser(MAX_RESPONSE_BYTES);

  constructor(
    private readonly origin: HttpOrigin,
    private readonly socket: Socket,
    secure: boolean,
  ) {
    socket.setNoDelay(true);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      this.connected = true;
      if (this.exchange !== null) this.send(this.exchange);
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => socket.destroy());
    socket.on('error', (err) => (this.error = err));
    socket.on('close', () => this.onClose());
  }

  run(exchange: Exchange): void {
    this.exchange = exchange;
    exchange.connection = this;
    this.parser.reset(exchange.method === 'HEAD');
    if (this.connected) this.send(exchange);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private send(exchange: Exchange): void {
    writeMessage(this.socket, exchange.head, exchange.body);
  }

  private onData(chunk: Buffer): void {
    const exchange = this.exchange;
    // Bytes nobody asked for: the connection is out of step.
    if (exchange === null) return this.destroy();
    let complete: boolean;
    try {
      complete = this.parser.execute(chunk);
    } catch (err) {
      exchange.fail('failed', (err as Error).message, err);
      return this.destroy();
    }
    if (!complete) return;
    this.exchange = null;
    const { parser } = this;
    const { status, headers, body } = parser;
    // Released before the answer is handed on, so that what the answer sets off can use this connection.
    if (!parser.keepAlive || parser.overrun || exchange.timedOut) this.destroy();
    else {
      const hinted = parser.keepAliveMs;
      this.expiresAt = Date.now() + (hinted === null ? this.origin.keepAliveMs : Math.min(hinted, this.origin.keepAliveMaxMs));
      this.origin.release(this);
    }
    exchange.complete(status, headers, body);
  }

  private onClose(): void {
    if (this.dead) return;
    this.dead = true;
    const exchange = this.exchange;
    this.exchange = null;
    if (exchange !== null) {
      if (this.parser.endsWithClose && this.error === null) exchange.complete(this.parser.status, this.parser.headers, this.parser.body);
      else exchange.fail('failed', this.error ? this.error.message : 'upstream closed the connection before the answer was complete', this.error ?? undefined);
    }
    this.origin.lost(this);
  }
}

/** One request: its head, ready to write, and its deadline. */
class Exchange {
  readonly method: string;
  readonly head: string;
  readonly body: Buffer | null;
  settled = false;
  timedOut = false;
  connection: Connection | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    request: ForwardRequest,
    host: string,
    private readonly done: Done,
    private readonly timeoutMs: number,
  ) {
    this.method = request.method;
    this.body = request.body === null ? null : typeof request.body === 'string' ? Buffer.from(request.body) : request.body;
    let head = request.method + ' ' + request.path + ' HTTP/1.1\r\nhost: ' + host + '\r\n';
    const headers = request.headers;
    for (let i = 0; i < headers.length; i += 2) head += headers[i]! + ': ' + headers[i + 1]! + '\r\n';
    if (this.body !== null) head += 'content-length: ' + this.body.length + '\r\n';
    else if (BODY_METHODS.has(request.method)) head += 'content-length: 0\r\n';
    this.head = head + '\r\n';
    this.timer = setTimeout(() => this.onTimeout(), timeoutMs);
  }

  complete(status: number, headers: string[], body: Buffer): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.done(null, { status, headers, body });
  }

  fail(kind: UpstreamFailureKind, message: string, cause?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.done(new UpstreamFailure(kind, `upstream failed: ${message}`, cause === undefined ? undefined : { cause }), null);
  }

  private onTimeout(): void {
    if (this.settled) return;
    this.settled = true;
    this.timedOut = true;
    this.done(new UpstreamFailure('timeout', `upstream did not answer within ${this.timeoutMs} ms`), null);
    // A connection with an answer half read cannot carry another request.
    this.connection?.destroy();
  }
}
