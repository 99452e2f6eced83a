import { z } from 'zod';
import { EVENTS_TOPIC, baseEnv, csv, port } from '@bunryu/core';
import { loadConfig } from '@bunryu/platform';

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
  .transform((u) => u.replace(/\/+$/, ''));

export const ConfigSchema = z.object({
  ...baseEnv,
  PORT: port(8083),
  /** Experiment and metric definitions come from its `GET /v1/config`. */
  EXPERIMENT_SERVICE_URL: httpUrl.default('http://127.0.0.1:8081'),
  /** Bearer token sent to the experiment-service (a `viewer` token is enough). */
  EXPERIMENT_SERVICE_TOKEN: z.string().optional(),
  /** Set: consume Kafka. Unset: the embedded log under `<BUNRYU_DATA_DIR>/events` that the gateway writes. */
  KAFKA_BROKERS: csv.pipe(z.array(z.string().regex(/^[^:\s]+:\d+$/, 'must be host:port')).min(1)).optional(),
  /** Set: a ClickHouse server (credentials and database may be in the URL). Unset: chdb in-process under `<BUNRYU_DATA_DIR>/aggregator/chdb`. */
  CLICKHOUSE_URL: httpUrl.optional(),
  /** The events topic (Kafka) or embedded log name; gateways must write the same one. */
  BUNRYU_EVENTS_TOPIC: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'letters, digits, . _ - only').default(EVENTS_TOPIC),
  /** Consumer group: aggregators sharing it share the partitions (SPEC §2). */
  AGGREGATOR_CONSUMER_GROUP: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'letters, digits, . _ - only').default('bunryu-aggregator'),
  /** How often the config snapshot is asked for again (a 304 when unchanged). */
  AGGREGATOR_CONFIG_REFRESH_MS: z.coerce.number().int().min(100).max(600_000).default(2000),
  /** Units each arm needs before a look counts for the always-valid (sequential) p-value. */
  AGGREGATOR_SEQUENTIAL_MIN_UNITS: z.coerce.number().int().min(2).max(1_000_000).default(100),
});
export type Config = z.infer<typeof ConfigSchema>;

export const readConfig = (): Readonly<Config> => loadConfig('aggregator', ConfigSchema);
