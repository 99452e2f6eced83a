import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchRunner } from '../src/models/batch-runner.ts';
import { DataType, encodeModel } from '../src/onnx/onnx-proto.ts';
import { logisticRegressionOnnx } from '../src/onnx/logistic-regression-onnx.ts';

const sessions: ort.InferenceSession[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.release()));
});

async function session(bytes: Uint8Array) {
  const s = await ort.InferenceSession.create(bytes);
  sessions.push(s);
  return s;
}

const weights = [0.5, -1.25, 0.02];
const bias = 0.1;
const logistic = (x: number[]) => 1 / (1 + Math.exp(-(bias + x.reduce((s, v, j) => s + v * weights[j]!, 0))));
const rows = (n: number, seed: number) => Array.from({ length: n }, (_, i) => [Math.sin(seed + i), Math.cos(seed * 3 + i), (seed + i) % 50]);

describe('BatchRunner', () => {
  it('scores concurrent requests in one run, giving each exactly its own rows', async () => {
    const s = await session(logisticRegressionOnnx({ input: 'x', output: 'p', features: ['a', 'b', 'c'], weights, bias }));
    const runner = new BatchRunner(s, 'x', 'p', 3);
    const requests = Array.from({ length: 40 }, (_, i) => rows(1 + (i % 4), i));
    const results = await Promise.all(requests.map((r) => runner.run(Float32Array.from(r.flat()), r.length)));
    expect(runner.stats).toEqual({ runs: 1, requests: 40 });
    results.forEach((scores, i) => {
      expect(scores.length).toBe(requests[i]!.length);
      requests[i]!.forEach((x, j) => expect(Math.abs(scores[j]! - logistic(x))).toBeLessThan(1e-6));
    });
  });

  it('runs each request alone when batching is off', async () => {
    const s = await session(logisticRegressionOnnx({ input: 'x', output: 'p', features: ['a', 'b', 'c'], weights, bias }));
    const runner = new BatchRunner(s, 'x', 'p', 3, false);
    await Promise.all([rows(2, 1), rows(3, 2)].map((r) => runner.run(Float32Array.from(r.flat()), r.length)));
    expect(runner.stats).toEqual({ runs: 2, requests: 2 });
  });

  it('retries a failed batch one request at a time, so only the requests that fail alone fail', async () => {
    // Reshape to a fixed [1, 3]: any run of more than one row fails.
    const s = await session(
      encodeModel({
        graph: {
          name: 'one_row_only',
          nodes: [
            { opType: 'Reshape', inputs: ['x', 'shape'], outputs: ['row'] },
            { opType: 'MatMul', inputs: ['row', 'W'], outputs: ['z0'] },
            { opType: 'Add', inputs: ['z0', 'B'], outputs: ['z'] },
            { opType: 'Sigmoid', inputs: ['z'], outputs: ['p'] },
          ],
          initializers: [
            { name: 'shape', dims: [2], int64s: [1, 3] },
            { name: 'W', dims: [3, 1], floats: weights },
            { name: 'B', dims: [1], floats: [bias] },
          ],
          inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: ['N', 3] }],
          outputs: [{ name: 'p', elemType: DataType.FLOAT, shape: ['N', 1] }],
        },
      }),
    );
    const runner = new BatchRunner(s, 'x', 'p', 3);
    const requests = [rows(1, 1), rows(2, 2), rows(1, 3)];
    const settled = await Promise.allSettled(requests.map((r) => runner.run(Float32Array.from(r.flat()), r.length)));
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(Math.abs((settled[0] as PromiseFulfilledResult<Float32Array>).value[0]! - logistic(requests[0]![0]!))).toBeLessThan(1e-6);
    expect(runner.stats.runs).toBe(4); // the batch, then each request alone
  });
});
