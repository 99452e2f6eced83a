import { z } from 'zod';
import { baseEnv, httpUrl, port } from '@bunryu/core';
import { loadConfig } from '@bunryu/platform';
import { failureLimitEnv } from '@bunryu/platform/auth';

export const ConfigSchema = z.object({
  ...baseEnv,
  PORT: port(8084),
  /** Sign-ins with a token the experiment-service refuses, per browser address per minute. */
  ...failureLimitEnv,
  EXPERIMENT_SERVICE_URL: httpUrl.default('http://127.0.0.1:8081'),
  AGGREGATOR_URL: httpUrl.default('http://127.0.0.1:8083'),
  /** A session ends after this long without a request. */
  SESSION_IDLE_MINUTES: z.coerce.number().int().min(1).max(7 * 24 * 60).default(12 * 60),
  /**
   * The session cookie's `Secure` attribute. `auto`: when the request came over HTTPS, which
   * behind a proxy means an `X-Forwarded-Proto: https` from an address TRUST_PROXY trusts;
   * `true`: always (the dashboard is only reached over HTTPS); `false`: never.
   */
  COOKIE_SECURE: z.enum(['auto', 'true', 'false', '1', '0'], { message: 'must be auto, true or false' }).default('auto'),
  /**
   * Which proxies' X-Forwarded-Proto and X-Forwarded-For are believed (fastify's trustProxy):
   * `false` (none), `true` (any: only when nothing else can reach the dashboard), a hop count,
   * or comma-separated addresses and CIDR ranges such as `127.0.0.1,10.0.0.0/8`.
   */
  TRUST_PROXY: z
    .string()
    .default('false')
    .transform((v, ctx): boolean | number | string[] => {
      if (v === 'false' || v === '') return false;
      if (v === 'true') return true;
      if (/^\d+$/.test(v)) return Number(v);
      const list = v.split(',').map((s) => s.trim()).filter(Boolean);
      if (list.some((s) => !/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(s))) ctx.addIssue({ code: 'custom', message: 'must be true, false, a hop count or comma-separated addresses/CIDR ranges' });
      return list;
    }),
  /** Set: sessions in Redis, shared by every dashboard replica. Unset: a file under BUNRYU_DATA_DIR (one dashboard). */
  REDIS_URL: z
    .string()
    .refine((u) => /^rediss?:\/\//.test(u), 'must be a redis:// or rediss:// URL')
    .optional(),
  REDIS_PREFIX: z.string().min(1).max(100).default('bunryu:'),
  /** Where sessions live: `redis` needs REDIS_URL; `memory` signs everyone out at a restart. Default: redis with REDIS_URL, else file. */
  DASHBOARD_SESSIONS: z.enum(['redis', 'file', 'memory']).optional(),
  /** How long the dashboard waits for an upstream answer before it gives up with 504. */
  UPSTREAM_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(15_000),
});
export type Config = z.infer<typeof ConfigSchema>;

export function sessionKind(config: Pick<Config, 'REDIS_URL' | 'DASHBOARD_SESSIONS'>): 'redis' | 'file' | 'memory' {
  return config.DASHBOARD_SESSIONS ?? (config.REDIS_URL ? 'redis' : 'file');
}

export const readConfig = (): Readonly<Config> => loadConfig('dashboard', ConfigSchema);
