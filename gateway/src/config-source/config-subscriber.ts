import type { Logger } from '@bunryu/platform/log';
import { Agent, request } from 'undici';
import { readSse } from './sse-reader.ts';
import type { SnapshotStore } from './snapshot-store.ts';

export interface ConfigSubscriberOptions {
  /** The experiment-service base URL. */
  url: string;
  token?: string;
  store: SnapshotStore;
  logger: Logger;
  /** Reconnect backoff: starts at min, doubles, capped at max (default 100 ms … 5 s). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** A stream silent for this long is taken as dead (the service sends heartbeats; default 45 s). */
  idleTimeoutMs?: number;
}

/**
 * Keeps the snapshot store current: `GET /v1/config` on every (re)connection, then the
 * `GET /v1/config/stream` server-sent events, each `snapshot` event carrying a full snapshot.
 * Any failure reconnects with exponential backoff; meanwhile the store keeps serving what it has.
 */
export class ConfigSubscriber {
  private readonly abort = new AbortController();
  private readonly agent = new Agent({ connections: 2 });
  private loop: Promise<void> | null = null;
  private streaming = false;
  private lastContact = 0;
  /** ETag of the last full GET, and the version it came with: usable while that version is served. */
  private etag: { tag: string; version: number } | undefined;
  private readonly headers: Record<string, string>;

  constructor(private readonly options: ConfigSubscriberOptions) {
    this.headers = options.token ? { authorization: `Bearer ${options.token}` } : {};
  }

  /** True while the stream is open. */
  get connected(): boolean {
    return this.streaming;
  }

  /** When the experiment-service last answered (ms since epoch; 0 never). */
  get lastContactAt(): number {
    return this.lastContact;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop?.catch(() => {});
    await this.agent.close();
  }

  private async run(): Promise<void> {
    const min = this.options.backoffMinMs ?? 100;
    const max = this.options.backoffMaxMs ?? 5000;
    let delay = min;
    while (!this.abort.signal.aborted) {
      let progressed = false;
      try {
        await this.session(() => {
          progressed = true;
        });
      } catch (err) {
        if (this.abort.signal.aborted) return;
        this.options.logger.warn({ err: (err as Error).message, retryInMs: progressed ? min : delay }, 'config stream failed');
      } finally {
        this.streaming = false;
      }
      // A stream that was open counts as success: reconnect at once, backoff starts over.
      if (progressed) delay = min;
      // Jitter spreads a fleet of gateways reconnecting to a restarted service.
      await sleep(delay * (0.5 + Math.random() / 2), this.abort.signal);
      if (!progressed) delay = Math.min(max, delay * 2);
    }
  }

  /** One connection: the current snapshot, then the stream until it ends; `opened` once it is open. */
  private async session(opened: () => void): Promise<void> {
    const base = this.options.url;
    const signal = this.abort.signal;

    const live = this.options.store.current;
    const conditional = this.etag !== undefined && live?.source === 'service' && live.version === this.etag.version ? { 'if-none-match': this.etag.tag } : {};
    const res = await request(`${base}/v1/config`, {
      dispatcher: this.agent,
      headers: { ...this.headers, ...conditional, accept: 'application/json' },
      signal,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    if (res.statusCode === 200) {
      const etag = res.headers.etag;
      const raw = (await res.body.json()) as { version?: unknown };
      const outcome = this.options.store.update(raw, 'service');
      // Only the ETag of a snapshot served may skip the next GET; a refused one is asked for again.
      const served = outcome === 'applied' || outcome === 'unchanged';
      this.etag = served && typeof etag === 'string' && typeof raw?.version === 'number' ? { tag: etag, version: raw.version } : undefined;
    } else {
      await res.body.dump();
      if (res.statusCode !== 304) throw new Error(`GET /v1/config answered ${res.statusCode}`);
    }
    this.lastContact = Date.now();

    const stream = await request(`${base}/v1/config/stream`, {
      dispatcher: this.agent,
      headers: { ...this.headers, accept: 'text/event-stream' },
      signal,
      headersTimeout: 10_000,
      bodyTimeout: this.options.idleTimeoutMs ?? 45_000,
    });
    if (stream.statusCode !== 200) {
      await stream.body.dump();
      throw new Error(`GET /v1/config/stream answered ${stream.statusCode}`);
    }
    this.streaming = true;
    opened();
    this.options.logger.info({ url: base }, 'config stream connected');
    for await (const event of readSse(stream.body)) {
      this.lastContact = Date.now();
      if (event.event !== 'snapshot') continue;
      let raw: unknown;
      try {
        raw = JSON.parse(event.data);
      } catch {
        this.options.logger.warn({}, 'config stream sent a snapshot that is not JSON: ignored');
        continue;
      }
      this.options.store.update(raw, 'service');
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
