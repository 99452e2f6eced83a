import { HttpOrigin } from './upstream-client.ts';

/** An upstream URL split into the client that reaches its origin and the path every request is prefixed with. */
export interface Upstream {
  url: string;
  origin: string;
  /** The URL's path without a trailing slash ('' for the root). */
  basePath: string;
  client: HttpOrigin;
}

export interface UpstreamPoolOptions {
  connections: number;
}

/**
 * One keep-alive client per upstream origin, shared by every route and variant that points
 * there, and kept across snapshot swaps so a config change never drops warm connections.
 */
export class UpstreamPools {
  private readonly byUrl = new Map<string, Upstream>();
  private readonly byOrigin = new Map<string, HttpOrigin>();

  constructor(private readonly options: UpstreamPoolOptions) {}

  resolve(url: string): Upstream {
    let upstream = this.byUrl.get(url);
    if (upstream) return upstream;
    const parsed = new URL(url);
    let client = this.byOrigin.get(parsed.origin);
    if (!client) {
      client = new HttpOrigin(parsed.origin, { connections: this.options.connections });
      this.byOrigin.set(parsed.origin, client);
    }
    upstream = { url, origin: parsed.origin, basePath: parsed.pathname.replace(/\/+$/, ''), client };
    this.byUrl.set(url, upstream);
    return upstream;
  }

  async close(): Promise<void> {
    const clients = [...this.byOrigin.values()];
    this.byOrigin.clear();
    this.byUrl.clear();
    await Promise.allSettled(clients.map((c) => c.close()));
  }
}
