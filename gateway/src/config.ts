import { z } from 'zod';
import { baseEnv, csv, port } from '@bunryu/core';
import { loadConfig } from '@bunryu/platform';

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
  .transform((u) => u.replace(/\/+$/, ''));

export const ConfigSchema = z.object({
  ...baseEnv,
  PORT: port(8080),
  /** Where the config snapshot comes from (`GET /v1/config`, `GET /v1/config/stream`). */
  EXPERIMENT_SERVICE_URL: httpUrl.default('http://127.0.0.1:8081'),
  /** Bearer token sent to the experiment-service (a `viewer` token is enough). */
  EXPERIMENT_SERVICE_TOKEN: z.string().optional(),
  /** Set: events go to Kafka. Unset: to the embedded log under `<BUNRYU_DATA_DIR>/events`. */
  KAFKA_BROKERS: csv.pipe(z.array(z.string().regex(/^[^:\s]+:\d+$/, 'must be host:port')).min(1)).optional(),
  /** Set: `x-api-key` must be one of these on the client API. */
  BUNRYU_CLIENT_KEYS: csv.pipe(z.array(z.string()).min(1)).optional(),
  /** Most keep-alive connections per upstream origin (opened as needed; as @fastify/reply-from). */
  GATEWAY_UPSTREAM_CONNECTIONS: z.coerce.number().int().min(1).max(1024).default(128),
  /** Events held in memory before the publisher spills to disk. */
  GATEWAY_EVENT_QUEUE_LIMIT: z.coerce.number().int().min(1000).max(10_000_000).default(100_000),
});
export type Config = z.infer<typeof ConfigSchema>;

export const readConfig = (): Readonly<Config> => loadConfig('gateway', ConfigSchema);
