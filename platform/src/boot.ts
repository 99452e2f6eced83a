import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { ConfigError, parseEnv } from '@bunryu/core';

/** Reads and validates process.env once; a bad value stops the process with one line naming it. */
export function loadConfig<S extends z.ZodObject>(service: string, schema: S): Readonly<z.infer<S>> {
  try {
    return parseEnv(schema, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${service}: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

export interface Runnable {
  app: FastifyInstance;
  /** Releases what the composition root opened (stores, producers, consumers). */
  close?: () => Promise<void>;
}

/** Listens, and on SIGINT/SIGTERM stops accepting, drains in-flight requests and closes adapters. */
export async function runService(service: string, runnable: Runnable, listen: { host: string; port: number }): Promise<void> {
  const { app } = runnable;
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, `${service} shutting down`);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    try {
      await app.close();
      await runnable.close?.();
      process.exit(0);
    } catch (err) {
      app.log.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  try {
    const address = await app.listen(listen);
    app.log.info(`${service} listening on ${address}`);
  } catch (err) {
    process.stderr.write(`${service}: cannot listen on ${listen.host}:${listen.port}: ${(err as Error).message}\n`);
    await runnable.close?.();
    process.exit(1);
  }
}
