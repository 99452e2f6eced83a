import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigSnapshot, Experiment } from '@bunryu/core';
import type { Logger } from '@bunryu/platform/log';
import { z } from 'zod';

export interface DefinitionsSourceOptions {
  /** The experiment-service base URL (`GET /v1/config`). */
  url: string;
  token?: string;
  /** Where the last definitions are kept for restarts while the experiment-service is down. */
  file: string;
  /** How often the snapshot is asked for again (with If-None-Match, so an unchanged one costs a 304). */
  refreshMs: number;
  logger: Logger;
  fetch?: typeof fetch;
}

/** What is kept on disk: the last snapshot, and every experiment ever seen in one. */
const CacheFile = z.object({
  etag: z.string().nullable(),
  snapshot: ConfigSnapshot,
  experiments: z.record(z.string(), Experiment),
});

/**
 * Experiment and metric definitions for the analysis, from the experiment-service's config
 * snapshot. The snapshot lists only experiments that affect traffic (running, paused, released),
 * so every experiment ever seen is remembered (and persisted): an analyst can still read the
 * results of one that was rolled back or archived.
 */
export class DefinitionsSource {
  private snapshot: ConfigSnapshot | null = null;
  private etag: string | null = null;
  private readonly known = new Map<string, Experiment>();
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private stopped = false;
  private lastError: string | null = 'no config snapshot yet';
  private lastWarnAt = 0;

  constructor(private readonly options: DefinitionsSourceOptions) {}

  experiment(key: string): Experiment | undefined {
    return this.snapshot?.experiments.find((e) => e.key === key) ?? this.known.get(key);
  }

  /** Version of the snapshot in use (null before the first one). */
  get version(): number | null {
    return this.snapshot?.version ?? null;
  }

  metrics(): Readonly<Record<string, unknown>> {
    return this.snapshot?.metrics ?? {};
  }

  /** For /readyz: throws until a snapshot is known (fetched or from the disk cache). */
  check(): void {
    if (!this.snapshot) throw new Error(this.lastError ?? 'no config snapshot yet');
  }

  /** Loads the disk cache; a missing or unreadable one is not an error. */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.options.file, 'utf8');
    } catch {
      return;
    }
    const parsed = CacheFile.safeParse(JSON.parse(text));
    if (!parsed.success) {
      this.options.logger.warn({ file: this.options.file }, 'the cached config snapshot is unreadable; waiting for the experiment-service');
      return;
    }
    this.etag = parsed.data.etag;
    this.snapshot = parsed.data.snapshot;
    for (const [key, e] of Object.entries(parsed.data.experiments)) this.known.set(key, e);
  }

  start(): void {
    const tick = async () => {
      await this.refresh();
      if (!this.stopped) this.timer = setTimeout(tick, this.options.refreshMs);
    };
    void tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.refreshing;
  }

  /** Fetches the snapshot once; failures are logged and leave the last one in place. */
  refresh(): Promise<void> {
    this.refreshing ??= this.fetchOnce().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async fetchOnce(): Promise<void> {
    const doFetch = this.options.fetch ?? fetch;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (this.etag && this.snapshot) headers['if-none-match'] = this.etag;
    try {
      const res = await doFetch(`${this.options.url}/v1/config`, { headers, signal: AbortSignal.timeout(10_000) });
      if (res.status === 304) return;
      if (!res.ok) throw new Error(`GET /v1/config answered ${res.status}`);
      const snapshot = ConfigSnapshot.parse(await res.json());
      const changed = !this.snapshot || snapshot.version !== this.snapshot.version;
      this.snapshot = snapshot;
      this.etag = res.headers.get('etag');
      this.lastError = null;
      for (const e of snapshot.experiments) this.known.set(e.key, e);
      if (changed) {
        this.options.logger.info({ version: snapshot.version, experiments: snapshot.experiments.length }, 'config snapshot loaded');
        await this.persist();
      }
    } catch (err) {
      const message = `experiment-service: ${(err as Error).message}`;
      // Once per new failure, then once a minute while it lasts: an outage must not flood the log.
      if (message !== this.lastError || Date.now() - this.lastWarnAt >= 60_000) {
        this.lastWarnAt = Date.now();
        this.options.logger.warn({ err: (err as Error).message }, 'fetching the config snapshot failed; keeping the last one');
      }
      this.lastError = message;
    }
  }

  private async persist(): Promise<void> {
    if (!this.snapshot) return;
    const body = JSON.stringify({ etag: this.etag, snapshot: this.snapshot, experiments: Object.fromEntries(this.known) });
    const tmp = `${this.options.file}.tmp`;
    try {
      await mkdir(dirname(this.options.file), { recursive: true });
      await writeFile(tmp, body);
      await rename(tmp, this.options.file);
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'caching the config snapshot on disk failed');
    }
  }
}
