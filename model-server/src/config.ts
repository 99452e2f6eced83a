import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { baseEnv, experimentServiceEnv, flag, port } from '@bunryu/core';
import { loadConfig } from '@bunryu/platform';
import { tokenEnv } from '@bunryu/platform/auth';

/** model-server/models, wherever the process was started from. */
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../models', import.meta.url));

export const ConfigSchema = z.object({
  ...baseEnv,
  ...tokenEnv,
  /** Asked before a version is retired: does a route or a live experiment still use it? */
  ...experimentServiceEnv,
  PORT: port(8082),
  /** The largest ONNX file a registration accepts. */
  MODEL_MAX_BYTES: z.coerce.number().int().min(1024).max(2 ** 31).default(64 * 1024 * 1024),
  /** Holds `<name>/<version>/model.onnx` + `model.json` (SPEC §4). */
  MODEL_DIR: z.string().min(1).default(DEFAULT_MODEL_DIR),
  /** Reload when a file under MODEL_DIR changes (POST /v1/models/reload works either way). */
  MODEL_WATCH: flag(true),
  /** Train the demo models into MODEL_DIR at start when it holds no model. */
  MODEL_TRAIN_IF_EMPTY: flag(true),
});
export type Config = z.infer<typeof ConfigSchema>;

export const readConfig = (): Readonly<Config> => loadConfig('model-server', ConfigSchema);
