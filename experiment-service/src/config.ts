import { z } from 'zod';
import { baseEnv, eventPolicyEnv, httpUrl, port } from '@bunryu/core';
import { loadConfig } from '@bunryu/platform';
import { tokenEnv } from '@bunryu/platform/auth';

export const ConfigSchema = z.object({
  ...baseEnv,
  PORT: port(8081),
  /** Set: the Redis store, shared by every replica. Unset: the file store under BUNRYU_DATA_DIR. */
  REDIS_URL: z
    .string()
    .refine((u) => /^rediss?:\/\//.test(u), 'must be a redis:// or rediss:// URL')
    .optional(),
  /** Every Redis key and the pub/sub channel start with it, so several deployments can share a server. */
  REDIS_PREFIX: z.string().min(1).max(100).default('bunryu:'),
  /** The audit log's retention, in Redis or in the file store: the newest entries kept, of the whole log and of each subject's; 0: all. */
  AUDIT_MAX_ENTRIES: z.coerce.number().int().min(0).max(100_000_000).default(100_000),
  /** Longest wait for one Redis command or a reconnect before the request fails with a 503. */
  REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(500),
  ...tokenEnv,
  /** `off`: no guarded rollout is driven by this replica (plans are still stored and shown). */
  BUNRYU_AUTOPILOT: z.enum(['on', 'off']).default('on'),
  /** Where the autopilot reads results (`GET /v1/results/:experiment`). */
  AGGREGATOR_URL: httpUrl.default('http://127.0.0.1:8083'),
  /** Bearer token sent to the aggregator, when it asks for one. */
  AUTOPILOT_AGGREGATOR_TOKEN: z.string().optional(),
  /** How often serving guardrails (error_rate, latency_ms) are evaluated; SPEC §10 asks at least every 5 s. */
  AUTOPILOT_SERVING_INTERVAL_MS: z.coerce.number().int().min(100).max(5000).default(2000),
  /** How often every guardrail and the primary metric are evaluated; SPEC §10 asks at least every minute. */
  AUTOPILOT_FULL_INTERVAL_MS: z.coerce.number().int().min(1000).max(60_000).default(60_000),
  /** Optional: every autopilot action (and change of the reason it holds) is POSTed here as JSON. */
  BUNRYU_WEBHOOK_URL: httpUrl.optional(),
  /**
   * The gateways' event policy (SPEC §16), set the same on both: this service does not see the
   * gateways' environment, and uses it to refuse (`strict`) or warn about (`warn`) a metric on an
   * event without an approved declaration. With per-route policies the strictest one applies.
   */
  BUNRYU_EVENT_POLICY: eventPolicyEnv,
  /** Seconds between SSE heartbeat comments, which keep idle proxies from closing the stream. */
  SSE_HEARTBEAT_SECONDS: z.coerce.number().min(0.05).max(3600).default(15),
});
export type Config = z.infer<typeof ConfigSchema>;

export const readConfig = (): Readonly<Config> => loadConfig('experiment-service', ConfigSchema);
