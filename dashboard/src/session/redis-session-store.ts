import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { createError } from '@bunryu/core';
import { redisReady } from '@bunryu/platform/redis';
import { newSessionId, type Identity, type Session, type SessionStore } from './session-store.ts';

export interface RedisSessionStoreOptions {
  url: string;
  /** Keys are `<prefix>dashboard:session:<sha256 of the id>`. */
  prefix: string;
  idleMs: number;
}

const CONNECT_TIMEOUT_MS = 2000;
/** How long a request waits for a connection being made before it is refused with a 503. */
const READY_WAIT_MS = 1000;

/**
 * Sessions in Redis, shared by every dashboard replica and kept across restarts. Each is one key
 * whose expiry is the idle deadline, moved on each use (GETEX), so Redis forgets idle sessions by
 * itself. Keys hold the SHA-256 of the session id, never the cookie's value.
 */
export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis';
  private readonly client: Redis;

  constructor(private readonly options: RedisSessionStoreOptions) {
    // A request fails fast while Redis is away instead of waiting for it.
    this.client = new Redis(options.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: CONNECT_TIMEOUT_MS });
    this.client.on('error', () => undefined); // reported through ping() and failing commands
  }

  private key(id: string): string {
    return `${this.options.prefix}dashboard:session:${createHash('sha256').update(id).digest('base64url')}`;
  }

  async create(token: string, identity: Identity): Promise<string> {
    const id = newSessionId();
    const value = JSON.stringify({ token, role: identity.role, name: identity.name });
    await this.run(() => this.client.set(this.key(id), value, 'PX', this.options.idleMs));
    return id;
  }

  async get(id: string | undefined): Promise<Session | undefined> {
    if (!id) return undefined;
    const text = await this.run(() => this.client.getex(this.key(id), 'PX', this.options.idleMs));
    if (text === null) return undefined;
    const s = JSON.parse(text) as Omit<Session, 'lastSeen'>;
    return { ...s, lastSeen: Date.now() };
  }

  async delete(id: string | undefined): Promise<void> {
    if (id) await this.run(() => this.client.del(this.key(id)));
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    await redisReady(this.client, READY_WAIT_MS);
    try {
      return await command();
    } catch (err) {
      throw createError('BUNRYU_NOT_READY', `the dashboard's session store (Redis) is unreachable: ${(err as Error).message}`);
    }
  }
}
