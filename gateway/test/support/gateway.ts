import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { parseEnv } from '@bunryu/core';
import type { EventLogProducer } from '@bunryu/event-log';
import { buildApp } from '../../src/app.ts';
import { compose, type ComposeOverrides, type Deps } from '../../src/compose.ts';
import { ConfigSchema, type Config } from '../../src/config.ts';

export interface TestGateway {
  url: string;
  app: FastifyInstance;
  deps: Deps;
  config: Readonly<Config>;
  dataDir: string;
  close(): Promise<void>;
}

export async function tempDir(prefix = 'bunryu-gateway-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** compose + buildApp + listen on port 0, as server.ts does. */
export async function startGateway(options: {
  experimentService: string;
  dataDir?: string;
  env?: Record<string, string>;
  producer?: EventLogProducer;
  overrides?: ComposeOverrides;
}): Promise<TestGateway> {
  const dataDir = options.dataDir ?? (await tempDir());
  const config = parseEnv(ConfigSchema, {
    LOG_LEVEL: 'silent',
    BUNRYU_DATA_DIR: dataDir,
    EXPERIMENT_SERVICE_URL: options.experimentService,
    ...options.env,
  });
  const deps = await compose(config, {
    subscriber: { backoffMinMs: 20, backoffMaxMs: 200 },
    publisher: { flushIntervalMs: 5, retryMinMs: 50, retryMaxMs: 200 },
    ...options.overrides,
    ...(options.producer ? { producer: options.producer } : {}),
  });
  const app = await buildApp(config, deps);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    app,
    deps,
    config,
    dataDir,
    close: async () => {
      await app.close();
      await deps.close();
    },
  };
}

export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
