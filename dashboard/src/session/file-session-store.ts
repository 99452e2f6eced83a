import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileDurably } from '@bunryu/platform/durable-files';
import { MemorySessionStore, newSessionId, type Identity, type Session, type SessionStore, type SessionStoreOptions } from './session-store.ts';

/** How long a session's new idle deadline may wait before it is written (sign-ins and sign-outs are written at once). */
const FLUSH_MS = 10_000;

const keyOf = (id: string) => createHash('sha256').update(id).digest('base64url');

/**
 * Sessions in memory and in one file (mode 0600) under the data directory, so a restart keeps
 * everyone signed in. For one dashboard process: two replicas need Redis (REDIS_URL). The file
 * is keyed by the SHA-256 of each session id, so it holds no cookie a reader could replay.
 */
export class FileSessionStore implements SessionStore {
  readonly kind = 'file';
  #dirty = false;
  #writing: Promise<void> = Promise.resolve();
  readonly #timer: NodeJS.Timeout;

  private constructor(
    private readonly path: string,
    private readonly memory: MemorySessionStore,
    private readonly now: () => number,
  ) {
    this.#timer = setInterval(() => {
      if (this.#dirty) void this.#write().catch(() => undefined);
    }, FLUSH_MS);
    this.#timer.unref();
  }

  static async open(path: string, opts: SessionStoreOptions): Promise<FileSessionStore> {
    const memory = new MemorySessionStore(opts);
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      // A damaged file signs everyone out; it does not keep the dashboard from starting.
      let saved: unknown;
      try {
        saved = JSON.parse(text);
      } catch {
        saved = null;
      }
      const entries = (saved as { sessions?: unknown } | null)?.sessions;
      if (Array.isArray(entries)) for (const [key, s] of entries as [string, Session][]) if (typeof key === 'string' && typeof s?.token === 'string') memory.restore(key, s);
    }
    await mkdir(dirname(path), { recursive: true });
    return new FileSessionStore(path, memory, opts.now ?? Date.now);
  }

  async create(token: string, identity: Identity): Promise<string> {
    const id = newSessionId();
    this.memory.restore(keyOf(id), { token, role: identity.role, name: identity.name, lastSeen: this.now() });
    await this.#write();
    return id;
  }

  async get(id: string | undefined): Promise<Session | undefined> {
    if (!id) return undefined;
    const s = await this.memory.get(keyOf(id));
    if (s) this.#dirty = true;
    return s;
  }

  async delete(id: string | undefined): Promise<void> {
    if (!id) return;
    await this.memory.delete(keyOf(id));
    await this.#write();
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.#timer);
    if (this.#dirty) await this.#write();
    await this.#writing;
  }

  /** One write at a time, each of the whole current state. */
  #write(): Promise<void> {
    this.#dirty = false;
    const next = this.#writing.then(() => writeFileDurably(this.path, JSON.stringify({ sessions: this.memory.entries() }), 0o600));
    this.#writing = next.catch(() => undefined);
    return next;
  }
}
