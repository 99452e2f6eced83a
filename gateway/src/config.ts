import { z } from 'zod';
import { baseEnv, port } from '@bunryu/core';
import { loadConfig } from '@bunryu/platform';

export const ConfigSchema = z.object({
  ...baseEnv,
  PORT: port(8080),
});
export type Config = z.infer<typeof ConfigSchema>;

export const readConfig = (): Readonly<Config> => loadConfig('gateway', ConfigSchema);
