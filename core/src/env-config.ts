import { z } from 'zod';

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
