import { createError } from '@bunryu/core';

export interface UpstreamRequest {
  method: string;
  /** Path and query below the upstream's base URL, e.g. `/v1/experiments?status=running`. */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export interface UpstreamResponse {
  status: number;
  headers: Headers;
  body: Buffer;
}

/**
 * One backend the dashboard talks to over HTTP. Unreachable or slow upstreams become the
 * catalogue's 502/504 naming the service, never a hang or a stack trace.
 */
export class UpstreamClient {
  readonly name: string;
  readonly #base: string;
  readonly #timeoutMs: number;

  constructor(name: string, baseUrl: string, timeoutMs: number) {
    this.name = name;
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#timeoutMs = timeoutMs;
  }

  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    let res: Response;
    try {
      res = await fetch(this.#base + req.path, {
        method: req.method,
        headers: req.headers ?? {},
        body: req.body === undefined || req.body.length === 0 ? undefined : typeof req.body === 'string' ? req.body : new Uint8Array(req.body),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const e = err as Error;
      if (e.name === 'TimeoutError') throw createError('BUNRYU_UPSTREAM_TIMEOUT', `${this.name} did not answer within ${this.#timeoutMs} ms`);
      throw createError('BUNRYU_UPSTREAM_FAILED', `${this.name} is unreachable`);
    }
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, headers: res.headers, body };
  }

  async json(req: UpstreamRequest): Promise<{ status: number; body: unknown }> {
    const res = await this.request({ ...req, headers: { accept: 'application/json', ...req.headers } });
    let body: unknown = null;
    try {
      body = res.body.length ? JSON.parse(res.body.toString('utf8')) : null;
    } catch {
      body = null;
    }
    return { status: res.status, body };
  }
}
