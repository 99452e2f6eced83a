import { join } from 'node:path';
import { sessionKind, type Config } from './config.ts';
import { FileSessionStore } from './session/file-session-store.ts';
import { RedisSessionStore } from './session/redis-session-store.ts';
import { MemorySessionStore, type SessionStore } from './session/session-store.ts';
import { UpstreamClient } from './proxy/upstream-client.ts';

/**
 * The composition root. Sessions live in Redis when REDIS_URL is set (any number of replicas),
 * else in a file under BUNRYU_DATA_DIR (one dashboard, kept across restarts); the other services
 * are reached over HTTP.
 */
export async function compose(config: Readonly<Config>) {
  const idleMs = config.SESSION_IDLE_MINUTES * 60_000;
  const kind = sessionKind(config);
  let sessions: SessionStore;
  if (kind === 'redis') {
    if (!config.REDIS_URL) throw new Error('DASHBOARD_SESSIONS=redis needs REDIS_URL');
    sessions = new RedisSessionStore({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX, idleMs });
  } else if (kind === 'file') {
    sessions = await FileSessionStore.open(join(config.BUNRYU_DATA_DIR, 'dashboard', 'sessions.json'), { idleMs });
  } else {
    sessions = new MemorySessionStore({ idleMs });
  }
  return {
    sessions,
    experimentService: new UpstreamClient('experiment-service', config.EXPERIMENT_SERVICE_URL, config.UPSTREAM_TIMEOUT_MS),
    aggregator: new UpstreamClient('aggregator', config.AGGREGATOR_URL, config.UPSTREAM_TIMEOUT_MS),
    close: () => sessions.close(),
  };
}
export type Deps = Awaited<ReturnType<typeof compose>>;
