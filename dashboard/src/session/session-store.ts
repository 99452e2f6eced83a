import { randomBytes } from 'node:crypto';

/** Who signed in, as the experiment-service reports it. `role` is null when it cannot say. */
export interface Identity {
  role: string | null;
  name: string | null;
}

export interface Session extends Identity {
  /** The bearer token. It stays on the server: no answer to the browser ever carries it. */
  token: string;
  lastSeen: number;
}

/**
 * Server-side sessions keyed by an unguessable id (256 random bits) that the browser holds in an
 * HttpOnly cookie, with sliding expiry: each use moves the idle deadline. Three adapters: memory
 * (tests), a file (one dashboard; survives a restart) and Redis (any number of replicas).
 */
export interface SessionStore {
  readonly kind: 'memory' | 'file' | 'redis';
  create(token: string, identity: Identity): Promise<string>;
  /** The live session for `id`, refreshed; undefined when unknown or idle too long. */
  get(id: string | undefined): Promise<Session | undefined>;
  delete(id: string | undefined): Promise<void>;
  /** Throws while the sessions cannot be read (for /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface SessionStoreOptions {
  idleMs: number;
  /** Oldest sessions are dropped beyond this many, so a flood of sign-ins cannot exhaust memory. */
  maxSessions?: number;
  now?: () => number;
}

export const newSessionId = (): string => randomBytes(32).toString('base64url');

/** Sessions in this process's memory; a restart signs everyone out. */
export class MemorySessionStore implements SessionStore {
  readonly kind: 'memory' | 'file' = 'memory';
  readonly #sessions = new Map<string, Session>();
  readonly #idleMs: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: SessionStoreOptions) {
    this.#idleMs = opts.idleMs;
    this.#max = opts.maxSessions ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  async create(token: string, identity: Identity): Promise<string> {
    const id = newSessionId();
    this.restore(id, { token, role: identity.role, name: identity.name, lastSeen: this.#now() });
    return id;
  }

  async get(id: string | undefined): Promise<Session | undefined> {
    if (!id) return undefined;
    const s = this.#sessions.get(id);
    if (!s) return undefined;
    const now = this.#now();
    if (now - s.lastSeen > this.#idleMs) {
      this.#sessions.delete(id);
      return undefined;
    }
    s.lastSeen = now;
    // Re-insert so Map order stays least-recently-used first for eviction.
    this.#sessions.delete(id);
    this.#sessions.set(id, s);
    return s;
  }

  async delete(id: string | undefined): Promise<void> {
    if (id) this.#sessions.delete(id);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  get size(): number {
    return this.#sessions.size;
  }

  /** Every live session, least recently used first (what the file store writes). */
  entries(): [string, Session][] {
    this.#sweep();
    return [...this.#sessions];
  }

  /** Puts a session back as it was (what the file store reads at start). */
  restore(id: string, session: Session): void {
    this.#sweep();
    while (this.#sessions.size >= this.#max) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    this.#sessions.set(id, session);
  }

  #sweep(): void {
    const now = this.#now();
    for (const [id, s] of this.#sessions) {
      if (now - s.lastSeen <= this.#idleMs) break; // LRU order: the rest are fresher
      this.#sessions.delete(id);
    }
  }
}
