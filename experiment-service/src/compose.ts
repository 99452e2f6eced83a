import type { Config } from './config.ts';

/** The composition root: the only place that chooses real or embedded adapters. */
export async function compose(_config: Readonly<Config>) {
  return { close: async () => {} };
}
export type Deps = Awaited<ReturnType<typeof compose>>;
