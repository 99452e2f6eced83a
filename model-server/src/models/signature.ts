import type * as ort from 'onnxruntime-node';
import type { VersionMetadata } from './model-metadata.ts';

/** Why the graph does not fit model.json: the declared input must be float [N, features] and the declared output must exist. */
export function signatureProblem(session: ort.InferenceSession, meta: VersionMetadata): string | undefined {
  const input = session.inputMetadata.find((m) => m.name === meta.input);
  if (!input) return `the graph has no input "${meta.input}" (it has ${session.inputNames.join(', ')})`;
  if (!session.outputNames.includes(meta.output)) return `the graph has no output "${meta.output}" (it has ${session.outputNames.join(', ')})`;
  if (input.isTensor) {
    if (input.type !== 'float32') return `input "${meta.input}" is ${input.type}, not float32`;
    const width = input.shape[1];
    if (input.shape.length !== 2 || (typeof width === 'number' && width !== meta.features.length)) {
      return `input "${meta.input}" has shape [${input.shape.join(', ')}] but model.json lists ${meta.features.length} features`;
    }
  }
  return undefined;
}
