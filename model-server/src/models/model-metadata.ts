/**
 * The two `model.json` files of the model directory:
 *
 *   models/<name>/model.json            ModelMetadata: default and fallback version, knobs
 *   models/<name>/<version>/model.json  VersionMetadata: features in order, input/output names,
 *                                       description, training metrics
 *   models/<name>/<version>/model.onnx  the graph: float [N, features] → float [N, 1]
 */
import { z } from 'zod';
import { KEY_PATTERN } from '@bunryu/core';

export const MODEL_FILE = 'model.onnx';
export const METADATA_FILE = 'model.json';

const Name = z.string().regex(KEY_PATTERN, 'must match ^[a-z0-9][a-z0-9._-]{0,63}$');

export const VersionMetadata = z.looseObject({
  description: z.string().default(''),
  /** The columns of the input tensor, in order; every request instance must carry each. */
  features: z
    .array(z.string().min(1))
    .min(1)
    .refine((f) => new Set(f).size === f.length, 'features must be distinct'),
  /** Name of the graph input, float [N, features.length]. */
  input: z.string().min(1).default('features'),
  /** Name of the graph output, float [N, 1] (or [N]): one score per instance. */
  output: z.string().min(1),
  /**
   * Whether concurrent requests may be stacked into one run. True for any graph that scores each
   * row on its own (the [N, F] → [N, 1] contract); false for one whose rows interact.
   */
  batch: z.boolean().default(true),
  /** Held-out evaluation of the training run (auc, logLoss, …). */
  metrics: z.record(z.string(), z.number()).default({}),
});
export type VersionMetadata = z.infer<typeof VersionMetadata>;

export const ModelMetadata = z.strictObject({
  description: z.string().default(''),
  /** The version that answers when `x-ab-params` names none. */
  defaultVersion: Name.optional(),
  /** The version that answers, with `x-model-fallback: true`, when the chosen one cannot. */
  fallbackVersion: Name.optional(),
  /** Parameters this model takes from `x-ab-params` besides `version`. */
  knobs: z
    .strictObject({
      blend: z
        .strictObject({
          description: z.string().default(''),
          min: z.number().default(0),
          max: z.number().default(1),
        })
        .optional(),
      blendWith: z
        .strictObject({
          description: z.string().default(''),
          /** The version blended against when `blendWith` is not given. */
          default: Name.optional(),
        })
        .optional(),
    })
    .default({}),
});
export type ModelMetadata = z.infer<typeof ModelMetadata>;

export const isName = (s: string): boolean => KEY_PATTERN.test(s);
