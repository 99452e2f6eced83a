import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { baseEnv, flag, port } from '@bunryu/core';
import { loadConfig } from '@bunryu/platform';

/** model-server/models, wherever the process was started from. */
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../models', import.meta.url));

export const ConfigSchema = z.object({
  ...baseEnv,
  PORT: port(8082),
  /** Holds `<name>/<version>/model.onnx` + `model.json` (SPEC §4). */
  MODEL_DIR: z.string().min(1).default(DEFAULT_MODEL_DIR),
  /** Reload when a file under MODEL_DIR changes (POST /v1/models/reload works either way). */
  MODEL_WATCH: flag(true),
  /** Train the demo models into MODEL_DIR at start when it holds no model. */
  MODEL_TRAIN_IF_EMPTY: flag(true),
});
export type Config = z.infer<typeof ConfigSchema>;

export const readConfig = (): Readonly<Config> => loadConfig('model-server', ConfigSchema);
