import { randomBytes } from 'node:crypto';

/** Who signed in, as the experiment-service reports it. `role` is null when it cannot say. */
export interface Identity {
  role: string | null;
  name: string | null;
}

export interface Session extends Identity {
  /** The bearer token. It stays in this process: no answer to the browser ever carries it. */
  token: string;
  lastSeen: number;
}

export interface SessionStoreOptions {
  idleMs: number;
  /** Oldest sessions are dropped beyond this many, so a flood of sign-ins cannot exhaust memory. */
  maxSessions?: number;
  now?: () => number;
}

/**
 * Server-side sessions keyed by an unguessable id (256 random bits) that the browser holds in an
 * HttpOnly cookie. Sliding expiry: each use moves the idle deadline.
 */
export class SessionStore {
  readonly #sessions = new Map<string, Session>();
  readonly #idleMs: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: SessionStoreOptions) {
    this.#idleMs = opts.idleMs;
    this.#max = opts.maxSessions ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  create(token: string, identity: Identity): string {
    const id = randomBytes(32).toString('base64url');
    this.#sweep();
    while (this.#sessions.size >= this.#max) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    this.#sessions.set(id, { token, role: identity.role, name: identity.name, lastSeen: this.#now() });
    return id;
  }

  /** The live session for `id`, refreshed; undefined when unknown or idle too long. */
  get(id: string | undefined): Session | undefined {
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

  delete(id: string | undefined): void {
    if (id) this.#sessions.delete(id);
  }

  get size(): number {
    return this.#sessions.size;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [id, s] of this.#sessions) {
      if (now - s.lastSeen <= this.#idleMs) break; // LRU order: the rest are fresher
      this.#sessions.delete(id);
    }
  }
}
