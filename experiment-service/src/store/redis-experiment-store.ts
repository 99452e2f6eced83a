import { Redis, type ChainableCommander } from 'ioredis';
import { createError, type EventDeclaration, type Experiment, type Holdout, type Route } from '@bunryu/core';
import {
  StaleWriteError,
  auditEntry,
  frozen,
  type AuditEntry,
  type Change,
  type ExperimentStore,
  type StoreState,
  type UserMetric,
} from './experiment-store.ts';

/**
 * One script applies a whole change, so it is atomic without WATCH (which would need a
 * connection per concurrent writer): check every expected version, INCR the config version,
 * write, append the audit entries and publish the new version on the config channel.
 *
 * KEYS: 1 experiments, 2 experiment versions, 3 routes, 4 metrics, 5 holdout, 6 config version,
 * 7 audit (all), 8 events, 9.. audit of one subject. ARGV: 1 the change (JSON), 2 the channel.
 * Audit entries arrive as JSON without their opening brace; the script prepends
 * `{"configVersion":<v>,` so no JSON is re-encoded in Lua (cjson would round numbers).
 */
const COMMIT_SCRIPT = `
local change = cjson.decode(ARGV[1])
for _, e in ipairs(change.expect) do
  local actual = tonumber(redis.call('HGET', KEYS[2], e[1]) or '0')
  if actual ~= e[2] then return {0, e[1], actual} end
end
local v = redis.call('INCR', KEYS[6])
for _, e in ipairs(change.experiments) do
  redis.call('HSET', KEYS[1], e[1], e[2])
  redis.call('HSET', KEYS[2], e[1], e[3])
end
for _, r in ipairs(change.routes) do redis.call('HSET', KEYS[3], r[1], r[2]) end
for _, m in ipairs(change.metrics) do redis.call('HSET', KEYS[4], m[1], m[2]) end
for _, d in ipairs(change.events) do redis.call('HSET', KEYS[8], d[1], d[2]) end
if change.holdout ~= '' then redis.call('SET', KEYS[5], change.holdout) end
for _, a in ipairs(change.audit) do
  local entry = '{"configVersion":' .. v .. ',' .. a[2]
  redis.call('RPUSH', KEYS[7], entry)
  redis.call('RPUSH', KEYS[a[1]], entry)
end
redis.call('PUBLISH', ARGV[2], tostring(v))
return {1, v}
`;

interface CommitClient {
  bunryuCommit(numberOfKeys: number, ...keysAndArgs: string[]): Promise<[0, string, number] | [1, number]>;
}

export interface RedisStoreOptions {
  url: string;
  /** Prefix of every key and of the pub/sub channel. */
  prefix: string;
}

/**
 * The Redis adapter: experiments, routes and metrics in one hash each (values are JSON), the
 * config version as an INCR counter, the audit log as lists (one for all, one per subject),
 * changes announced on the `<prefix>config` channel so every replica rebuilds its snapshot.
 */
export class RedisExperimentStore implements ExperimentStore {
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly listeners = new Set<(version: number) => void>();
  private readonly keys;
  private readonly channel: string;
  /** host:port, for messages (never the password). */
  private readonly where: string;
  private subscribed: Promise<unknown> | undefined;
  /** Experiments as last read, by key; shared by every load, hence frozen. */
  private readonly parsed = new Map<string, Experiment>();
  private everReady = false;

  constructor(options: RedisStoreOptions) {
    const p = options.prefix;
    this.keys = {
      experiments: `${p}experiments`,
      versions: `${p}experiment-versions`,
      routes: `${p}routes`,
      metrics: `${p}metrics`,
      holdout: `${p}holdout`,
      events: `${p}events`,
      configVersion: `${p}config-version`,
      audit: `${p}audit`,
      auditOf: (subject: string) => `${p}audit:${subject}`,
    };
    this.channel = `${p}config`;
    const url = new URL(options.url);
    this.where = `${url.hostname}:${url.port || 6379}`;
    // Fail a command after a few reconnect attempts instead of hanging the request that sent it.
    this.client = new Redis(options.url, { maxRetriesPerRequest: 2, lazyConnect: false });
    this.client.defineCommand('bunryuCommit', { lua: COMMIT_SCRIPT });
    this.client.on('error', () => undefined); // reported through ping() and failing commands
    this.subscriber = this.client.duplicate();
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.emit(Number(message));
    });
    this.subscriber.on('ready', () => {
      // ioredis resubscribes after a reconnect, but messages published meanwhile are gone.
      if (this.everReady) this.emit(-1);
      this.everReady = true;
    });
  }

  /**
   * Reads the small parts and the experiment versions in one transaction, then fetches only the
   * experiments whose version this instance has not parsed yet: with 1,000 experiments a
   * rebuild after one change moves one experiment, not the whole hash. If an experiment moved
   * between the two reads, it reads again, so the state is always that of one config version.
   */
  async load(): Promise<StoreState> {
    const k = this.keys;
    for (let attempt = 1; attempt <= 5; attempt++) {
      const [versions, routes, metrics, holdout, version, events] = await this.transaction<
        [Record<string, string>, Record<string, string>, Record<string, string>, string | null, string | null, Record<string, string>]
      >((m) => m.hgetall(k.versions).hgetall(k.routes).hgetall(k.metrics).get(k.holdout).get(k.configVersion).hgetall(k.events));
      const missing = Object.keys(versions).filter((key) => this.parsed.get(key)?.version !== Number(versions[key]));
      let moved = false;
      if (missing.length > 0) {
        const jsons = await this.call(() => this.client.hmget(k.experiments, ...missing));
        missing.forEach((key, i) => {
          const e = frozen(JSON.parse(jsons[i]!) as Experiment);
          this.parsed.set(key, e);
          if (e.version !== Number(versions[key])) moved = true;
        });
      }
      if (moved) continue;
      return {
        version: Number(version ?? 0),
        experiments: Object.keys(versions).map((key) => this.parsed.get(key)!),
        routes: Object.values(routes).map((json) => JSON.parse(json) as Route),
        metrics: Object.values(metrics).map((json) => JSON.parse(json) as UserMetric),
        holdout: holdout === null ? null : (JSON.parse(holdout) as Holdout),
        events: Object.values(events).map((json) => JSON.parse(json) as EventDeclaration),
      };
    }
    // Experiments keep changing under us: read everything in one transaction instead.
    const [experiments, routes, metrics, holdout, version, events] = await this.transaction<
      [Record<string, string>, Record<string, string>, Record<string, string>, string | null, string | null, Record<string, string>]
    >((m) => m.hgetall(k.experiments).hgetall(k.routes).hgetall(k.metrics).get(k.holdout).get(k.configVersion).hgetall(k.events));
    return {
      version: Number(version ?? 0),
      experiments: Object.values(experiments).map((json) => frozen(JSON.parse(json) as Experiment)),
      routes: Object.values(routes).map((json) => JSON.parse(json) as Route),
      metrics: Object.values(metrics).map((json) => JSON.parse(json) as UserMetric),
      holdout: holdout === null ? null : (JSON.parse(holdout) as Holdout),
      events: Object.values(events).map((json) => JSON.parse(json) as EventDeclaration),
    };
  }

  private async transaction<T extends unknown[]>(build: (m: ChainableCommander) => ChainableCommander): Promise<T> {
    const replies = await this.call(() => build(this.client.multi()).exec());
    if (!replies) throw new Error('the Redis transaction was aborted');
    return replies.map(([err, value]) => {
      if (err) throw err;
      return value;
    }) as T;
  }

  async getExperiment(key: string): Promise<Experiment | undefined> {
    const json = await this.call(() => this.client.hget(this.keys.experiments, key));
    return json === null ? undefined : (JSON.parse(json) as Experiment);
  }

  async version(): Promise<number> {
    return Number((await this.call(() => this.client.get(this.keys.configVersion))) ?? 0);
  }

  async commit(change: Change): Promise<{ version: number }> {
    const k = this.keys;
    const subjects = [...new Set(change.audit.map((a) => a.subject))];
    const keys = [k.experiments, k.versions, k.routes, k.metrics, k.holdout, k.configVersion, k.audit, k.events, ...subjects.map(k.auditOf)];
    const envelope = {
      expect: Object.entries(change.expect ?? {}),
      experiments: (change.experiments ?? []).map((e) => [e.key, JSON.stringify(e), e.version]),
      routes: (change.routes ?? []).map((r) => [r.key, JSON.stringify(r)]),
      metrics: (change.metrics ?? []).map((m) => [m.key, JSON.stringify(m)]),
      holdout: change.holdout ? JSON.stringify(change.holdout) : '',
      events: (change.events ?? []).map((d) => [d.type, JSON.stringify(d)]),
      audit: change.audit.map((a) => {
        const json = JSON.stringify(auditEntry(a, 0));
        // Drop `{"configVersion":0,`: the script writes the real version there.
        return [9 + subjects.indexOf(a.subject), json.slice(json.indexOf(',') + 1)];
      }),
    };
    const reply = await this.call(() =>
      (this.client as unknown as CommitClient).bunryuCommit(keys.length, ...keys, JSON.stringify(envelope), this.channel),
    );
    if (reply[0] === 0) {
      const key = reply[1];
      throw new StaleWriteError(key, change.expect?.[key] ?? 0, Number(reply[2]));
    }
    return { version: Number(reply[1]) };
  }

  async audit(query: { subject?: string; limit?: number } = {}): Promise<AuditEntry[]> {
    const key = query.subject === undefined ? this.keys.audit : this.keys.auditOf(query.subject);
    const start = query.limit === undefined ? 0 : -query.limit;
    if (query.limit === 0) return [];
    const lines = await this.call(() => this.client.lrange(key, start, -1));
    return lines.map((l) => JSON.parse(l) as AuditEntry);
  }

  async onChange(listener: (version: number) => void): Promise<() => void> {
    this.subscribed ??= this.subscriber.subscribe(this.channel).catch((err: unknown) => {
      this.subscribed = undefined;
      throw new Error(`cannot subscribe to ${this.channel} on Redis at ${this.where}: ${(err as Error).message}`);
    });
    await this.subscribed;
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async ping(): Promise<void> {
    await this.call(() => this.client.ping());
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await Promise.allSettled([quit(this.client), quit(this.subscriber)]);
  }

  private emit(version: number): void {
    for (const listener of this.listeners) listener(version);
  }

  /** A command failing while Redis is unreachable is a 503 (try again), not a 500 (a bug). */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (this.client.status !== 'ready') throw createError('BUNRYU_NOT_READY', `Redis at ${this.where} is not reachable`, { redis: this.client.status });
      throw err;
    }
  }
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  await client.quit();
}
