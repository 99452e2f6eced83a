import { DataType, encodeModel } from './onnx-proto.ts';

export interface LogisticRegressionExport {
  /** Graph input name; its shape is [N, features.length]. */
  input: string;
  /** Graph output name; its shape is [N, 1]. */
  output: string;
  features: readonly string[];
  /** One weight per feature, in feature order. */
  weights: readonly number[];
  bias: number;
  doc?: string;
  metadata?: Record<string, string>;
}

/**
 * `output = Sigmoid(MatMul(input, W) + B)`: input float [N, F], W [F, 1], B [1], output [N, 1].
 * Weights are stored as float32, so callers should publish `Math.fround`ed weights to describe
 * the file exactly.
 */
export function logisticRegressionOnnx(m: LogisticRegressionExport): Uint8Array {
  const f = m.features.length;
  if (m.weights.length !== f) throw new Error(`${m.weights.length} weights for ${f} features`);
  return encodeModel({
    doc: m.doc ?? '',
    metadata: { features: m.features.join(','), ...m.metadata },
    graph: {
      name: 'logistic_regression',
      doc: `sigmoid(${m.input} · W + B) over features ${m.features.join(', ')}`,
      nodes: [
        { opType: 'MatMul', inputs: [m.input, 'W'], outputs: ['logit_raw'], name: 'matmul' },
        { opType: 'Add', inputs: ['logit_raw', 'B'], outputs: ['logit'], name: 'add_bias' },
        { opType: 'Sigmoid', inputs: ['logit'], outputs: [m.output], name: 'sigmoid' },
      ],
      initializers: [
        { name: 'W', dims: [f, 1], floats: m.weights },
        { name: 'B', dims: [1], floats: [m.bias] },
      ],
      inputs: [{ name: m.input, elemType: DataType.FLOAT, shape: ['N', f] }],
      outputs: [{ name: m.output, elemType: DataType.FLOAT, shape: ['N', 1] }],
    },
  });
}
