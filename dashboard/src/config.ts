import { z } from 'zod';
import { baseEnv, flag, httpUrl, port } from '@bunryu/core';
import { loadConfig } from '@bunryu/platform';

export const ConfigSchema = z.object({
  ...baseEnv,
  PORT: port(8084),
  EXPERIMENT_SERVICE_URL: httpUrl.default('http://127.0.0.1:8081'),
  AGGREGATOR_URL: httpUrl.default('http://127.0.0.1:8083'),
  /** The model-server whose versions the Models page lists (`GET /v1/models`). */
  MODEL_SERVER_URL: httpUrl.default('http://127.0.0.1:8082'),
  /** A session ends after this long without a request. */
  SESSION_IDLE_MINUTES: z.coerce.number().int().min(1).max(7 * 24 * 60).default(12 * 60),
  /** Mark the session cookie `Secure`: set it when the dashboard is served over HTTPS. */
  COOKIE_SECURE: flag(false),
  /** How long the dashboard waits for an upstream answer before it gives up with 504. */
  UPSTREAM_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(15_000),
});
export type Config = z.infer<typeof ConfigSchema>;

export const readConfig = (): Readonly<Config> => loadConfig('dashboard', ConfigSchema);
