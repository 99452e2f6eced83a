import { Pool } from 'undici';

/** An upstream URL split into the pool that reaches its origin and the path every request is prefixed with. */
export interface Upstream {
  url: string;
  origin: string;
  /** The URL's path without a trailing slash ('' for the root). */
  basePath: string;
  pool: Pool;
}

export interface UpstreamPoolOptions {
  connections: number;
}

/**
 * One keep-alive undici Pool per upstream origin, shared by every route and variant that points
 * there, and kept across snapshot swaps so a config change never drops warm connections.
 */
export class UpstreamPools {
  private readonly byUrl = new Map<string, Upstream>();
  private readonly byOrigin = new Map<string, Pool>();

  constructor(private readonly options: UpstreamPoolOptions) {}

  resolve(url: string): Upstream {
    let upstream = this.byUrl.get(url);
    if (upstream) return upstream;
    const parsed = new URL(url);
    let pool = this.byOrigin.get(parsed.origin);
    if (!pool) {
      pool = new Pool(parsed.origin, {
        connections: this.options.connections,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 600_000,
        connect: { timeout: 10_000 },
      });
      this.byOrigin.set(parsed.origin, pool);
    }
    upstream = { url, origin: parsed.origin, basePath: parsed.pathname.replace(/\/+$/, ''), pool };
    this.byUrl.set(url, upstream);
    return upstream;
  }

  async close(): Promise<void> {
    const pools = [...this.byOrigin.values()];
    this.byOrigin.clear();
    this.byUrl.clear();
    await Promise.allSettled(pools.map((p) => p.close()));
  }
}
