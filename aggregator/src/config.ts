import { z } from 'zod';
import { baseEnv, eventLogEnv, experimentServiceEnv, httpUrl, port } from '@bunryu/core';
import { loadConfig } from '@bunryu/platform';
import { tokenEnv } from '@bunryu/platform/auth';

export const ConfigSchema = z.object({
  ...baseEnv,
  /** Who may read results: the experiment-service's tokens and roles (viewer and up). */
  ...tokenEnv,
  ...experimentServiceEnv,
  ...eventLogEnv,
  PORT: port(8083),
  /** Set: a ClickHouse server (credentials and database may be in the URL). Unset: chdb in-process under `<BUNRYU_DATA_DIR>/aggregator/chdb`. */
  CLICKHOUSE_URL: httpUrl.optional(),
  /** Consumer group: aggregators sharing it share the partitions (SPEC §2). */
  AGGREGATOR_CONSUMER_GROUP: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'letters, digits, . _ - only').default('bunryu-aggregator'),
  /** How often the config snapshot is asked for again (a 304 when unchanged). */
  AGGREGATOR_CONFIG_REFRESH_MS: z.coerce.number().int().min(100).max(600_000).default(2000),
  /** Units each arm needs before a look counts for the always-valid (sequential) p-value. */
  AGGREGATOR_SEQUENTIAL_MIN_UNITS: z.coerce.number().int().min(2).max(1_000_000).default(100),
  /**
   * The oldest answer to `GET /v1/results/:experiment?metrics=` served from the background
   * refresh (ms since its computation started). With the consumer's insert latency it must stay
   * under SPEC §4's 5 s freshness bound.
   */
  AGGREGATOR_SERVED_MAX_AGE_MS: z.coerce.number().int().min(100).max(4000).default(3000),
  /**
   * The most memory one analysis query may take in ClickHouse (MB, its `max_memory_usage`): a
   * larger one fails with an error (the request gets a 5xx) instead of making the host swap.
   */
  AGGREGATOR_QUERY_MAX_MEMORY_MB: z.coerce.number().int().min(64).max(1_048_576).default(8192),
  /**
   * How long after a ramp's recorded start first exposures are left out of the analysis (ms, ADR
   * 0009): gateways apply a ramp a moment after the experiment-service records it, and units
   * assigned on the old weights in that moment would count in the new phase as a ratio mismatch.
   */
  AGGREGATOR_PHASE_SETTLE_MS: z.coerce.number().int().min(0).max(600_000).default(5000),
  /**
   * How far before its last bound a fold's refresh looks for new rows (ms, ADR 0013): inserts by
   * other processes writing to the same ClickHouse server that were still running then.
   */
  AGGREGATOR_FOLD_OVERLAP_MS: z.coerce.number().int().min(0).max(600_000).default(5000),
});
export type Config = z.infer<typeof ConfigSchema>;

export const readConfig = (): Readonly<Config> => loadConfig('aggregator', ConfigSchema);
