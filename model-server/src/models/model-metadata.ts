/**
 * The two `model.json` files of the model directory:
 *
 *   models/<name>/model.json            ModelMetadata: default and fallback version, knobs
 *   models/<name>/<version>/model.json  VersionMetadata: features in order, input/output names,
 *                                       description, training metrics
 *   models/<name>/<version>/model.onnx  the graph: float [N, features] → float [N, 1]
 *   models/<name>/<version>/status.json what registration decided: ready, rejected or retired,
 *                                       with the gates (absent for versions put there by hand)
 *   models/<name>/evaluation.json       held-out rows for the offline gate (EvaluationSet)
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
  /** The range every score must fall in (the smoke gate checks it), e.g. [0, 1] for a probability. */
  outputRange: z.tuple([z.number(), z.number()]).optional(),
  /**
   * Injected faults, for drills and the demo (`npm run demo -- --rollouts`): a version that the
   * serving guardrails must catch. Applied on the HTTP path only, so the registration gates still
   * judge the graph itself.
   */
  faults: z
    .strictObject({
      /** Share of this version's answers that are a 500 instead of the scores. */
      errorRate: z.number().min(0).max(1).default(0),
      /** Share of this version's answers held back `delayMs` before they are sent. */
      slowRate: z.number().min(0).max(1).default(0),
      delayMs: z.number().int().min(0).max(60_000).default(0),
    })
    .optional(),
});
export type VersionMetadata = z.infer<typeof VersionMetadata>;

export const ModelMetadata = z.strictObject({
  description: z.string().default(''),
  /** The version that answers when `x-ab-params` names none. */
  defaultVersion: Name.optional(),
  /** The version that answers, with `x-model-fallback: true`, when the chosen one cannot. */
  fallbackVersion: Name.optional(),
  /** Limits of the gates a new version must pass (SPEC §12); defaults where absent. */
  gates: z
    .strictObject({
      maxLatencyP99Ms: z.number().positive().optional(),
      maxAucDrop: z.number().min(0).max(1).optional(),
    })
    .optional(),
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

export const STATUS_FILE = 'status.json';
export const EVALUATION_FILE = 'evaluation.json';

const GateRecord = z.object({
  name: z.string(),
  passed: z.boolean(),
  value: z.union([z.number(), z.record(z.string(), z.number())]).optional(),
  reason: z.string().optional(),
});

/** A version's registration record (status.json). */
export const VersionStatus = z.object({
  status: z.enum(['ready', 'rejected', 'retired']),
  gates: z.array(GateRecord).default([]),
  registeredAt: z.string().optional(),
  registeredBy: z.string().optional(),
  retiredAt: z.string().optional(),
  retiredBy: z.string().optional(),
});
export type VersionStatus = z.infer<typeof VersionStatus>;

export const EvaluationFile = z.object({
  features: z.array(z.string()).min(1),
  rows: z.array(z.array(z.number())),
  labels: z.array(z.number()),
});
