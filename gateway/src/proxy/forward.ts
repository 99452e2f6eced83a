import type { Dispatcher } from 'undici';
import type { Upstream } from './upstream-pools.ts';

export interface ForwardRequest {
  method: string;
  /** Path and query, already joined with the upstream's base path. */
  path: string;
  /** Flat `[name, value, name, value…]`, as undici takes it without copying. */
  headers: string[];
  body: Buffer | string | null;
}

export interface UpstreamResponse {
  status: number;
  /** Flat `[name, value…]` as received (names in the upstream's case). */
  rawHeaders: Buffer[];
  body: Buffer;
}

export type UpstreamFailureKind = 'timeout' | 'failed';

/** Answers are buffered; one larger than this is a failure rather than a memory hazard. */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

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

/**
 * Sends one request upstream and buffers the answer. The deadline covers connection, headers and
 * body together; buffering is what lets a route still answer from its fallback when the body
 * fails or stalls halfway (model answers are small, and the route deadline bounds the wait).
 *
 * The handler uses undici's native (legacy) dispatch interface: no stream and no header parsing
 * per request, which is most of what separates a forwarding hop from a bare socket.
 */
export function forward(upstream: Upstream, request: ForwardRequest, timeoutMs: number): Promise<UpstreamResponse> {
  return new Promise<UpstreamResponse>((resolve, reject) => {
    const handler = new BufferingHandler(resolve, reject, timeoutMs);
    try {
      upstream.pool.dispatch(
        { path: request.path, method: request.method as Dispatcher.HttpMethod, headers: request.headers, body: request.body },
        handler,
      );
    } catch (err) {
      handler.onError(err as Error);
    }
  });
}

class BufferingHandler implements Dispatcher.DispatchHandler {
  private abort: ((err?: Error) => void) | null = null;
  private settled = false;
  private status = 0;
  private rawHeaders: Buffer[] = [];
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly resolve: (r: UpstreamResponse) => void,
    private readonly reject: (e: UpstreamFailure) => void,
    timeoutMs: number,
  ) {
    this.timer = setTimeout(() => this.onTimeout(timeoutMs), timeoutMs);
  }

  private onTimeout(timeoutMs: number): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(new UpstreamFailure('timeout', `upstream did not answer within ${timeoutMs} ms`));
    this.abort?.(new Error('deadline exceeded'));
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    // Still queued in the pool when the deadline passed: drop it before it reaches a socket.
    if (this.settled) abort(new Error('deadline exceeded'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    // 1xx informational answers are followed by the real one.
    if (statusCode >= 200) {
      this.status = statusCode;
      this.rawHeaders = rawHeaders;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > MAX_RESPONSE_BYTES) {
      this.abort?.(new Error(`answer larger than ${MAX_RESPONSE_BYTES} bytes`));
      return false;
    }
    this.chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.resolve({ status: this.status, rawHeaders: this.rawHeaders, body });
  }

  onError(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    const timeout = (err as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT' || (err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT';
    this.reject(new UpstreamFailure(timeout ? 'timeout' : 'failed', `upstream failed: ${err.message}`, { cause: err }));
  }
}
