/**
 * Answers a predict request from one generation of the model directory (SPEC §4 model-server):
 *
 * 1. The model is the path's `:name`, unless `x-ab-params.model` selects another one.
 * 2. The version is `x-ab-params.version`, else the model's `defaultVersion`.
 * 3. If the model declares the `blend` knob and the params set it, the score is
 *    `blend · score(version) + (1 − blend) · score(blendWith)`, where `blendWith` comes from the
 *    params or the knob's declared default.
 * 4. A version that failed to load, or whose run throws, is replaced by the model's
 *    `fallbackVersion` (reported as `fallback`); when that cannot answer either: 503.
 */
import { createError } from '@bunryu/core';
import type { Generation, LoadedModel, ReadyVersion } from '../models/model-registry.ts';
import { invalidParam, type AbParams } from './ab-params.ts';
import { featureMatrix, readInstances, type Instance } from './instances.ts';

export interface Prediction {
  model: string;
  /** The version whose score was returned (after any fallback). */
  version: string;
  predictions: number[];
  blend?: { weight: number; with: string };
  /** Present when a requested version could not answer and another one did. */
  fallback?: { from: string; to: string; reason: string }[];
}

interface LegResult {
  served: string;
  scores: Float32Array;
  fallback?: { from: string; to: string; reason: string };
}

export async function predict(g: Generation, pathModel: string, params: AbParams, body: unknown): Promise<Prediction> {
  // 1.
  const name = modelParam(params) ?? pathModel;
  const model = g.models.get(name);
  if (!model) {
    throw createError('BUNRYU_NOT_FOUND', `no model "${name}"${name === pathModel ? '' : ' (selected by x-ab-params.model)'}`, { models: [...g.models.keys()] });
  }
  if (model.error) throw createError('BUNRYU_MODEL_UNAVAILABLE', `model ${name} cannot answer: ${model.error}`);
  const instances = readInstances(body);

  // 2.
  const version = resolveVersion(model, params.version, 'x-ab-params.version') ?? model.defaultVersion;
  if (version === undefined) throw createError('BUNRYU_MODEL_UNAVAILABLE', `model ${name} has no version to answer with`);

  // 3.
  const blend = blendParams(model, params);
  if (!blend) {
    const leg = await runLeg(model, version, instances);
    return answer(name, leg, Array.from(leg.scores), [leg]);
  }
  const [a, b] = await Promise.all([runLeg(model, version, instances), runLeg(model, blend.with, instances)]);
  const w = blend.weight;
  const mixed = new Array<number>(a.scores.length);
  for (let i = 0; i < mixed.length; i++) mixed[i] = w * a.scores[i]! + (1 - w) * b.scores[i]!;
  return { ...answer(name, a, mixed, [a, b]), blend: { weight: w, with: b.served } };
}

function answer(model: string, primary: LegResult, predictions: number[], legs: LegResult[]): Prediction {
  const fallback = legs.flatMap((l) => (l.fallback ? [l.fallback] : []));
  return fallback.length ? { model, version: primary.served, predictions, fallback } : { model, version: primary.served, predictions };
}

function modelParam(params: AbParams): string | undefined {
  const m = params.model;
  if (m === undefined) return undefined;
  if (typeof m !== 'string' || m === '') throw invalidParam('x-ab-params.model', 'must be a model name');
  return m;
}

/** Versions are folder names; a bare number `2` or `"2"` also names folder `v2` when there is one. */
function resolveVersion(model: LoadedModel, raw: unknown, path: string): string | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string' && !(typeof raw === 'number' && Number.isInteger(raw))) throw invalidParam(path, 'must be a version name');
  const s = String(raw);
  if (model.versions.has(s)) return s;
  if (/^\d+$/.test(s) && model.versions.has(`v${s}`)) return `v${s}`;
  throw invalidParam(path, `model ${model.name} has no version "${s}"`, { versions: [...model.versions.keys()] });
}

function blendParams(model: LoadedModel, params: AbParams): { weight: number; with: string } | undefined {
  const knob = model.knobs.blend;
  if (!knob || params.blend === undefined || params.blend === null) return undefined; // undeclared knobs are not this model's
  const raw = params.blend;
  const weight = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(weight) || weight < knob.min || weight > knob.max) {
    throw invalidParam('x-ab-params.blend', `must be a number from ${knob.min} to ${knob.max}`);
  }
  const partner = resolveVersion(model, params.blendWith, 'x-ab-params.blendWith') ?? model.knobs.blendWith?.default;
  if (partner === undefined) throw invalidParam('x-ab-params.blendWith', `is required with blend: model ${model.name} declares no default partner version`);
  return { weight, with: partner };
}

async function runLeg(model: LoadedModel, version: string, instances: Instance[]): Promise<LegResult> {
  const first = model.versions.get(version)!;
  let reason: string;
  if (first.status === 'ready') {
    const input = featureMatrix(instances, first.metadata.features); // a bad feature is the client's 400, never a fallback
    try {
      return { served: version, scores: await run(first, input, instances.length) };
    } catch (err) {
      reason = `run failed: ${(err as Error).message}`;
    }
  } else {
    reason = `failed to load: ${first.error}`;
  }

  const fb = model.fallbackVersion;
  if (fb === undefined || fb === version) {
    throw createError('BUNRYU_MODEL_UNAVAILABLE', `model ${model.name} version ${version} cannot answer (${reason}) and the model has no other fallback version`);
  }
  const second = model.versions.get(fb)!;
  if (second.status !== 'ready') {
    throw createError('BUNRYU_MODEL_UNAVAILABLE', `model ${model.name} version ${version} cannot answer (${reason}), nor can its fallback ${fb} (failed to load: ${second.error})`);
  }
  const input = featureMatrix(instances, second.metadata.features);
  try {
    return { served: fb, scores: await run(second, input, instances.length), fallback: { from: version, to: fb, reason } };
  } catch (err) {
    throw createError('BUNRYU_MODEL_UNAVAILABLE', `model ${model.name} version ${version} cannot answer (${reason}), nor can its fallback ${fb} (run failed: ${(err as Error).message})`);
  }
}

function run(v: ReadyVersion, data: Float32Array, rows: number): Promise<Float32Array> {
  return v.runner.run(data, rows);
}
