import { mkdir, readdir } from 'node:fs/promises';
import type { Config } from './config.ts';
import type { Logger } from '@bunryu/platform/log';
import { ModelRegistry } from './models/model-registry.ts';
import { trainDemoModels } from './training/train-demo-models.ts';

export interface ComposeOptions {
  log?: Logger;
  /** Where training progress goes when the demo models are built at start. */
  progress?: (line: string) => void;
}

/**
 * The composition root. ONNX Runtime is the model-server's only engine (SPEC §2), so the one
 * choice here is what to load: MODEL_DIR, trained first if it holds no model yet.
 */
export async function compose(config: Readonly<Config>, opts: ComposeOptions = {}) {
  await mkdir(config.MODEL_DIR, { recursive: true });
  if (config.MODEL_TRAIN_IF_EMPTY && (await readdir(config.MODEL_DIR)).length === 0) {
    const progress = opts.progress ?? ((line: string) => process.stdout.write(`${line}\n`));
    progress(`no models in ${config.MODEL_DIR}: training the demo models`);
    await trainDemoModels(config.MODEL_DIR, { log: progress });
  }
  const registry = new ModelRegistry(config.MODEL_DIR, opts.log ? { log: opts.log } : {});
  await registry.reload();
  if (config.MODEL_WATCH) await registry.watch();
  return { registry, close: () => registry.close() };
}
export type Deps = Awaited<ReturnType<typeof compose>>;
