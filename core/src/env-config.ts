import { z } from 'zod';
import { EVENTS_TOPIC } from './schemas.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Validates an environment once and freezes the result. Every bad variable is reported in one
 * message naming it, so a misconfigured process stops with one clear line.
 */
export function parseEnv<S extends z.ZodObject>(
  schema: S,
  env: Readonly<Record<string, string | undefined>>,
): Readonly<z.infer<S>> {
  // Empty strings mean "unset", as in shell `VAR= cmd`.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const r = schema.safeParse(cleaned);
  if (!r.success) {
    const parts = r.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${parts.join('; ')}`);
  }
  return Object.freeze(r.data);
}

/** Common variables of every service (SPEC §2). */
export const baseEnv = {
  HOST: z.string().default('127.0.0.1'),
  BUNRYU_DATA_DIR: z.string().default('./data'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

export const port = (defaultPort: number) => z.coerce.number().int().min(0).max(65535).default(defaultPort);

/** `a,b,c` → ['a','b','c'], empty entries dropped. */
export const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

/** A boolean variable: `true`/`1` or `false`/`0`, with its default when unset. */
export const flag = (defaultValue: boolean) =>
  z
    .enum(['true', 'false', '1', '0'], { message: 'must be true, false, 1 or 0' })
    .transform((v) => v === 'true' || v === '1')
    .default(defaultValue);

/** An http(s) URL without trailing slashes, so paths can be appended. */
export const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
  .transform((u) => u.replace(/\/+$/, ''));

/** Services that read the config snapshot from the experiment-service. */
export const experimentServiceEnv = {
  /** Where the config snapshot comes from (`GET /v1/config`, `GET /v1/config/stream`). */
  EXPERIMENT_SERVICE_URL: httpUrl.default('http://127.0.0.1:8081'),
  /** Bearer token sent to the experiment-service (a `viewer` token is enough). */
  EXPERIMENT_SERVICE_TOKEN: z.string().optional(),
};

/** Services on the event log: the gateway writes it, the aggregator reads it. */
export const eventLogEnv = {
  /** Set: Kafka. Unset: the embedded log under `<BUNRYU_DATA_DIR>/events`. */
  KAFKA_BROKERS: csv.pipe(z.array(z.string().regex(/^[^:\s]+:\d+$/, 'must be host:port')).min(1)).optional(),
  /** The Kafka topic, or the embedded log's name: gateways and aggregators must use the same. */
  BUNRYU_EVENTS_TOPIC: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'letters, digits, . _ - only').default(EVENTS_TOPIC),
};
