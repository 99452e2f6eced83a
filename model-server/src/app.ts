import type { FastifyInstance } from 'fastify';
import { createHttpServer } from '@bunryu/platform';
import type { Config } from './config.ts';
import type { Deps } from './compose.ts';

export async function buildApp(config: Readonly<Config>, _deps: Deps): Promise<FastifyInstance> {
  const app = createHttpServer({ service: 'model-server', logLevel: config.LOG_LEVEL });
  return app;
}
