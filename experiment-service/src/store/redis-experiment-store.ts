import { randomUUID } from 'node:crypto';
import { Redis, type ChainableCommander } from 'ioredis';
import { BunryuError, createError, type EventDeclaration, type Experiment, type Holdout, type Route } from '@bunryu/core';
import { redisReady } from '@bunryu/platform/redis';
import {
  DEFAULT_AUDIT_MAX_ENTRIES,
  StaleWriteError,
  auditEntry,
  frozen,
  sortedExport,
  type AuditEntry,
  type Change,
  type ExperimentStore,
  type StoreExport,
  type StoreState,
  type UserMetric,
} from './experiment-store.ts';

/**
 * One script applies a whole change, so it is atomic without WATCH (which would need a
 * connection per concurrent writer): check every expected version, INCR the config version,
 * write, append the audit entries and publish the new version on the config channel.
 *
 * KEYS: 1 experiments, 2 experiment versions, 3 routes, 4 metrics, 5 holdout, 6 config version,
 * 7 audit (all), 8 epoch, 9 events, 10.. audit of one subject. ARGV: 1 the change (JSON), 2 the
 * channel, 3 the epoch this process writes in: a Redis that restarted empty (or holds another
 * deployment's data) has another epoch or none, and the change is refused rather than starting
 * over; 4 the most entries an audit list keeps (its oldest are trimmed; 0: all).
 * Audit entries arrive as JSON without their opening brace; the script prepends
 * `{"configVersion":<v>,` so no JSON is re-encoded in Lua (cjson would round numbers).
 */
const COMMIT_SCRIPT = `
local epoch = redis.call('GET', KEYS[8])
if epoch ~= ARGV[3] then return {2, epoch or ''} end
local change = cjson.decode(ARGV[1])
for _, e in ipairs(change.expect) do
  local actual = tonumber(redis.call('HGET', KEYS[2], e[1]) or '0')
  if actual ~= e[2] then return {0, e[1], actual} end
end
for _, r in ipairs(change.expectRoutes) do
  local actual = redis.call('HGET', KEYS[3], r[1]) or ''
  if actual ~= r[2] then return {0, 'route:' .. r[1], -1} end
end
local v = redis.call('INCR', KEYS[6])
for _, e in ipairs(change.experiments) do
  redis.call('HSET', KEYS[1], e[1], e[2])
  redis.call('HSET', KEYS[2], e[1], e[3])
end
for _, r in ipairs(change.routes) do redis.call('HSET', KEYS[3], r[1], r[2]) end
for _, m in ipairs(change.metrics) do redis.call('HSET', KEYS[4], m[1], m[2]) end
for _, d in ipairs(change.events) do redis.call('HSET', KEYS[9], d[1], d[2]) end
if change.holdout ~= '' then redis.call('SET', KEYS[5], change.holdout) end
for _, a in ipairs(change.audit) do
  local entry = '{"configVersion":' .. v .. ',' .. a[2]
  redis.call('RPUSH', KEYS[7], entry)
  redis.call('RPUSH', KEYS[a[1]], entry)
end
local keep = tonumber(ARGV[4])
if keep > 0 then
  redis.call('LTRIM', KEYS[7], -keep, -1)
  for i = 10, #KEYS do redis.call('LTRIM', KEYS[i], -keep, -1) end
end
redis.call('PUBLISH', ARGV[2], tostring(v))
return {1, v}
`;


/** A store without an epoch gets one: a new deployment, or data written before epochs existed. */
const INIT_EPOCH_SCRIPT = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
`;

/**
 * Writes an export into an empty store under a new epoch, at once. KEYS: 1-7 as in COMMIT_SCRIPT,
 * 8 epoch, 9 the epochs the new one replaces, 10 events, 11.. audit of one subject. ARGV: 1 the data (JSON,
 * audit entries as finished JSON strings), 2 the channel, 3 the new epoch, 4 the config version,
 * 5.. the epochs it replaces. Publishes -1: every replica rebuilds whatever version it had.
 */
const IMPORT_SCRIPT = `
if redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7], KEYS[10]) > 0 then return 0 end
if tonumber(redis.call('GET', KEYS[6]) or '0') > 0 then return 0 end
local data = cjson.decode(ARGV[1])
for _, e in ipairs(data.experiments) do
  redis.call('HSET', KEYS[1], e[1], e[2])
  redis.call('HSET', KEYS[2], e[1], e[3])
end
for _, r in ipairs(data.routes) do redis.call('HSET', KEYS[3], r[1], r[2]) end
for _, m in ipairs(data.metrics) do redis.call('HSET', KEYS[4], m[1], m[2]) end
for _, d in ipairs(data.events) do redis.call('HSET', KEYS[10], d[1], d[2]) end
if data.holdout ~= '' then redis.call('SET', KEYS[5], data.holdout) end
for _, a in ipairs(data.audit) do
  redis.call('RPUSH', KEYS[7], a[2])
  redis.call('RPUSH', KEYS[a[1]], a[2])
end
redis.call('SET', KEYS[6], ARGV[4])
redis.call('SET', KEYS[8], ARGV[3])
redis.call('DEL', KEYS[9])
for i = 5, #ARGV do redis.call('SADD', KEYS[9], ARGV[i]) end
redis.call('PUBLISH', ARGV[2], '-1')
return 1
`;

interface ScriptClient {
  bunryuCommit(numberOfKeys: number, ...keysAndArgs: string[]): Promise<[0, string, number] | [1, number] | [2, string]>;
  bunryuInitEpoch(key: string, epoch: string): Promise<string>;
  bunryuImport(numberOfKeys: number, ...keysAndArgs: string[]): Promise<0 | 1>;
}

export interface RedisStoreOptions {
  url: string;
  /** Prefix of every key and of the pub/sub channel. */
  prefix: string;
  /** The most entries the audit log (and each subject's) keeps in Redis; older ones are dropped. 0: all. */
  auditMaxEntries?: number;
  /**
   * Longest wait for one command, and for a connection being re-established, before the request
   * that needs it fails with a 503 (default 500 ms): an outage is reported at once, not after
   * the reconnect attempts a queued command would wait for.
   */
  commandTimeoutMs?: number;
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
  private readonly timeoutMs: number;
  /** The epoch of the data this process serves; undefined until it first read the store. */
  private epoch: string | undefined;
  /** Set when the store no longer holds that data: every read and write fails with it. */
  private lost: BunryuError | undefined;
  /** The last config version read, for the message when the data is gone. */
  private lastVersion = 0;

  private readonly auditMaxEntries: number;

  constructor(options: RedisStoreOptions) {
    this.auditMaxEntries = options.auditMaxEntries ?? DEFAULT_AUDIT_MAX_ENTRIES;
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
      epoch: `${p}epoch`,
      replaces: `${p}epoch-replaces`,
      auditOf: (subject: string) => `${p}audit:${subject}`,
    };
    this.channel = `${p}config`;
    const url = new URL(options.url);
    this.where = `${url.hostname}:${url.port || 6379}`;
    this.timeoutMs = options.commandTimeoutMs ?? 500;
    // Fail fast: no offline queue (a command sent while disconnected fails at once instead of
    // waiting for reconnects), bounded connects and commands, reconnects at most 500 ms apart.
    this.client = new Redis(options.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: this.timeoutMs,
      commandTimeout: this.timeoutMs,
      retryStrategy: (attempt) => Math.min(50 * attempt, 500),
      lazyConnect: false,
    });
    this.client.defineCommand('bunryuCommit', { lua: COMMIT_SCRIPT });
    this.client.defineCommand('bunryuInitEpoch', { numberOfKeys: 1, lua: INIT_EPOCH_SCRIPT });
    this.client.defineCommand('bunryuImport', { lua: IMPORT_SCRIPT });
    this.client.on('error', () => undefined); // reported through ping() and failing commands
    // The subscriber only subscribes, and must resubscribe by itself after a reconnect: it keeps
    // ioredis's queue and has no command timeout (a subscription waits for messages).
    this.subscriber = this.client.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: 2, commandTimeout: undefined });
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
      const [versions, routes, metrics, holdout, version, epoch, events] = await this.transaction<
        [Record<string, string>, Record<string, string>, Record<string, string>, string | null, string | null, string | null, Record<string, string>]
      >((m) => m.hgetall(k.versions).hgetall(k.routes).hgetall(k.metrics).get(k.holdout).get(k.configVersion).get(k.epoch).hgetall(k.events));
      const checked = await this.checkEpoch(epoch, version);
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
        epoch: checked,
        experiments: Object.keys(versions).map((key) => this.parsed.get(key)!),
        routes: Object.values(routes).map((json) => JSON.parse(json) as Route),
        metrics: Object.values(metrics).map((json) => JSON.parse(json) as UserMetric),
        holdout: holdout === null ? null : (JSON.parse(holdout) as Holdout),
        events: Object.values(events).map((json) => JSON.parse(json) as EventDeclaration),
      };
    }
    // Experiments keep changing under us: read everything in one transaction instead.
    const [experiments, routes, metrics, holdout, version, epoch, events] = await this.transaction<
      [Record<string, string>, Record<string, string>, Record<string, string>, string | null, string | null, string | null, Record<string, string>]
    >((m) => m.hgetall(k.experiments).hgetall(k.routes).hgetall(k.metrics).get(k.holdout).get(k.configVersion).get(k.epoch).hgetall(k.events));
    return {
      version: Number(version ?? 0),
      epoch: await this.checkEpoch(epoch, version),
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
    const [version, epoch] = await this.call(() => this.client.mget(this.keys.configVersion, this.keys.epoch));
    await this.checkEpoch(epoch ?? null, version ?? null);
    return Number(version ?? 0);
  }

  async commit(change: Change, retried = false): Promise<{ version: number }> {
    const k = this.keys;
    const epoch = this.epoch ?? (await this.version(), this.epoch!);
    if (this.lost) throw this.lost;
    const subjects = [...new Set(change.audit.map((a) => a.subject))];
    const keys = [k.experiments, k.versions, k.routes, k.metrics, k.holdout, k.configVersion, k.audit, k.epoch, k.events, ...subjects.map(k.auditOf)];
    const envelope = {
      expect: Object.entries(change.expect ?? {}),
      // '' stands for "no such route": HGET answers nil, which the script reads as ''.
      expectRoutes: Object.entries(change.expectRoutes ?? {}).map(([k, json]) => [k, json ?? '']),
      experiments: (change.experiments ?? []).map((e) => [e.key, JSON.stringify(e), e.version]),
      routes: (change.routes ?? []).map((r) => [r.key, JSON.stringify(r)]),
      metrics: (change.metrics ?? []).map((m) => [m.key, JSON.stringify(m)]),
      holdout: change.holdout ? JSON.stringify(change.holdout) : '',
      events: (change.events ?? []).map((d) => [d.type, JSON.stringify(d)]),
      audit: change.audit.map((a) => {
        const json = JSON.stringify(auditEntry(a, 0));
        // Drop `{"configVersion":0,`: the script writes the real version there.
        return [10 + subjects.indexOf(a.subject), json.slice(json.indexOf(',') + 1)];
      }),
    };
    const reply = await this.call(() =>
      (this.client as unknown as ScriptClient).bunryuCommit(keys.length, ...keys, JSON.stringify(envelope), this.channel, epoch, String(this.auditMaxEntries)),
    );
    if (reply[0] === 2) {
      // Another epoch: lost data (refused), or an import this process has not seen (then retry).
      await this.checkEpoch(reply[1] || null, null);
      if (retried) throw createError('BUNRYU_NOT_READY', 'the store changed epoch twice during one write; try again');
      return this.commit(change, true);
    }
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
    await this.version();
  }

  async exportAll(): Promise<StoreExport> {
    const k = this.keys;
    const [experiments, routes, metrics, holdout, version, epoch, audit, events] = await this.transaction<
      [Record<string, string>, Record<string, string>, Record<string, string>, string | null, string | null, string | null, string[], Record<string, string>]
    >((m) => m.hgetall(k.experiments).hgetall(k.routes).hgetall(k.metrics).get(k.holdout).get(k.configVersion).get(k.epoch).lrange(k.audit, 0, -1).hgetall(k.events));
    return sortedExport({
      epoch: await this.checkEpoch(epoch, version),
      version: Number(version ?? 0),
      experiments: Object.values(experiments).map((json) => JSON.parse(json) as Experiment),
      routes: Object.values(routes).map((json) => JSON.parse(json) as Route),
      metrics: Object.values(metrics).map((json) => JSON.parse(json) as UserMetric),
      holdout: holdout === null ? null : (JSON.parse(holdout) as Holdout),
      events: Object.values(events).map((json) => JSON.parse(json) as EventDeclaration),
      audit: audit.map((line) => JSON.parse(line) as AuditEntry),
    });
  }

  async importAll(data: StoreExport): Promise<{ version: number; epoch: string }> {
    const k = this.keys;
    const subjects = [...new Set(data.audit.map((a) => a.subject))];
    const keys = [k.experiments, k.versions, k.routes, k.metrics, k.holdout, k.configVersion, k.audit, k.epoch, k.replaces, k.events, ...subjects.map(k.auditOf)];
    const payload = {
      events: data.events.map((d) => [d.type, JSON.stringify(d)]),
      experiments: data.experiments.map((e) => [e.key, JSON.stringify(e), String(e.version)]),
      routes: data.routes.map((r) => [r.key, JSON.stringify(r)]),
      metrics: data.metrics.map((m) => [m.key, JSON.stringify(m)]),
      holdout: data.holdout ? JSON.stringify(data.holdout) : '',
      audit: data.audit.map((a) => [11 + subjects.indexOf(a.subject), JSON.stringify(auditEntry(a, a.configVersion))]),
    };
    const epoch = randomUUID();
    // Replicas that served the exported data, or the data this process lost, follow the import.
    const replaced = [...new Set([data.epoch, this.epoch].filter((e): e is string => typeof e === 'string' && e !== ''))];
    const done = await this.call(() =>
      (this.client as unknown as ScriptClient).bunryuImport(keys.length, ...keys, JSON.stringify(payload), this.channel, epoch, String(data.version), ...replaced),
    );
    if (done !== 1) throw createError('BUNRYU_ALREADY_EXISTS', `the store on Redis at ${this.where} is not empty: import only into an empty store`);
    this.epoch = epoch;
    this.lost = undefined;
    this.parsed.clear();
    this.lastVersion = data.version;
    return { version: data.version, epoch };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await Promise.allSettled([quit(this.client), quit(this.subscriber)]);
  }

  private emit(version: number): void {
    for (const listener of this.listeners) listener(version);
  }

  /**
   * Checks the epoch read with the data against the one this process serves. The first read
   * adopts what it finds (drawing one for a store without). After that, another epoch or none
   * means the data was lost; unless an import (an operator's decision) replaced this epoch, every
   * read and write fails, and /readyz says why, until an import.
   */
  private async checkEpoch(found: string | null, version: string | null): Promise<string> {
    if (found !== null && found === this.epoch) {
      // Also the way back from a loss: Redis restarted from its own persisted data after all.
      this.lost = undefined;
      this.lastVersion = Number(version ?? 0);
      return found;
    }
    if (this.epoch === undefined) {
      const epoch = found ?? (await this.call(() => (this.client as unknown as ScriptClient).bunryuInitEpoch(this.keys.epoch, randomUUID())));
      this.epoch = epoch;
      this.lastVersion = Number(version ?? 0);
      return epoch;
    }
    if (found !== null && (await this.call(() => this.client.sismember(this.keys.replaces, this.epoch!))) === 1) {
      this.epoch = found;
      this.lost = undefined;
      this.parsed.clear();
      this.lastVersion = Number(version ?? 0);
      return found;
    }
    this.lost = createError(
      'BUNRYU_NOT_READY',
      `Redis at ${this.where} lost this service's data: epoch ${this.epoch} (config version ${this.lastVersion}) is gone, ` +
        (found === null ? 'Redis holds no epoch (it restarted empty?)' : `Redis holds epoch ${found}`) +
        '. Writes are refused: restore an export with POST /v1/import, then restart every replica that still reports this; run Redis with AOF (see the README).',
      { epoch: this.epoch, found, configVersion: this.lastVersion },
    );
    throw this.lost;
  }

  /** A command failing while Redis is unreachable or stalled is a 503 (try again), not a 500 (a bug). */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    await redisReady(this.client, this.timeoutMs);
    try {
      return await fn();
    } catch (err) {
      if (this.client.status !== 'ready' || /timed out|isn't writeable|Connection is closed/i.test((err as Error).message)) {
        throw createError('BUNRYU_NOT_READY', `Redis at ${this.where} is not reachable`, { redis: this.client.status });
      }
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
