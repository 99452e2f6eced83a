import { z } from 'zod';
import { baseEnv, port } from '@bunryu/core';
import { loadConfig } from '@bunryu/platform';
import { parseTokenList } from './auth/tokens.ts';

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
  BUNRYU_ADMIN_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
  /** `role:token` or `role:name:token`, comma-separated. */
  BUNRYU_TOKENS: z
    .string()
    .transform((s, ctx) => {
      const { tokens, errors } = parseTokenList(s);
      for (const message of errors) ctx.addIssue({ code: 'custom', message });
      return tokens;
    })
    .optional(),
  /** Seconds between SSE heartbeat comments, which keep idle proxies from closing the stream. */
  SSE_HEARTBEAT_SECONDS: z.coerce.number().min(0.05).max(3600).default(15),
});
export type Config = z.infer<typeof ConfigSchema>;

export const readConfig = (): Readonly<Config> => loadConfig('experiment-service', ConfigSchema);
