import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { compose, type Deps } from '../../src/compose.ts';
import { ConfigSchema } from '../../src/config.ts';
import { trainDemoModels, type TrainSummary } from '../../src/training/train-demo-models.ts';

const dirs: string[] = [];

export async function tempDir(prefix = 'bunryu-model-server-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export async function removeTempDirs(): Promise<void> {
  trained = undefined;
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

let trained: Promise<{ dir: string; summary: TrainSummary }> | undefined;

/** The demo models, trained once per test file; copy them before changing anything. */
export function demoModels(): Promise<{ dir: string; summary: TrainSummary }> {
  trained ??= (async () => {
    const dir = await tempDir('bunryu-demo-models-');
    const summary = await trainDemoModels(dir);
    return { dir, summary };
  })();
  return trained;
}

/** A private copy of the demo models. */
export async function demoModelCopy(): Promise<string> {
  const { dir } = await demoModels();
  const copy = await tempDir();
  await cp(dir, copy, { recursive: true });
  return copy;
}

export interface TestApp {
  app: FastifyInstance;
  deps: Deps;
  close(): Promise<void>;
}

export async function startApp(modelDir: string, env: Record<string, string> = {}): Promise<TestApp> {
  const config = Object.freeze(ConfigSchema.parse({ LOG_LEVEL: 'silent', MODEL_DIR: modelDir, MODEL_WATCH: 'false', MODEL_TRAIN_IF_EMPTY: 'false', ...env }));
  const deps = await compose(config, { progress: () => {} });
  const app = await buildApp(config, deps);
  return {
    app,
    deps,
    close: async () => {
      await app.close();
      await deps.close();
    },
  };
}

export const instance = (over: Record<string, unknown> = {}) => ({ user_affinity: 0.4, item_popularity: 0.7, recency: 5, price: 18, position: 2, ...over });

export async function until(check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
