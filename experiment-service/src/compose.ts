import { join } from 'node:path';
import type { Config } from './config.ts';
import { AggregatorResults, type ResultsSource } from './autopilot/results-source.ts';
import type { ExperimentStore } from './store/experiment-store.ts';
import { FileExperimentStore } from './store/file-experiment-store.ts';
import { RedisExperimentStore } from './store/redis-experiment-store.ts';

export interface Deps {
  store: ExperimentStore;
  /** Which adapter was chosen, for the start-up log line. */
  storeKind: 'redis' | 'file';
  /** Where the autopilot reads results; absent: no autopilot (BUNRYU_AUTOPILOT=off, or tests that leave it out). */
  results?: ResultsSource;
  now?: () => Date;
  close(): Promise<void>;
}

/** The composition root: the only place that chooses real or embedded adapters. */
export async function compose(config: Readonly<Config>): Promise<Deps> {
  const store: ExperimentStore = config.REDIS_URL
    ? new RedisExperimentStore({ url: config.REDIS_URL, prefix: config.REDIS_PREFIX, auditMaxEntries: config.AUDIT_MAX_ENTRIES, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
    : await FileExperimentStore.open(join(config.BUNRYU_DATA_DIR, 'experiment-service'), { auditMaxEntries: config.AUDIT_MAX_ENTRIES });
  // Learn the store's epoch now, so data lost later is noticed even before the first request.
  // Unreachable at start-up is not fatal here: /readyz reports it, and the first read learns it.
  await store.version().catch(() => undefined);
  const results = config.BUNRYU_AUTOPILOT === 'on' ? new AggregatorResults({ url: config.AGGREGATOR_URL, ...(config.AUTOPILOT_AGGREGATOR_TOKEN ? { token: config.AUTOPILOT_AGGREGATOR_TOKEN } : {}) }) : undefined;
  return { store, storeKind: config.REDIS_URL ? 'redis' : 'file', ...(results ? { results } : {}), close: () => store.close() };
}
