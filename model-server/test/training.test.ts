import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { VersionMetadata } from '../src/models/model-metadata.ts';
import { decodeModel } from '../src/onnx/onnx-proto.ts';
import { auc, logLoss } from '../src/training/evaluation.ts';
import { fitLogisticRegression } from '../src/training/logistic-regression.ts';
import { createRng, features, generateDataset, normal, sampleInstance, trueClickProbability } from '../src/training/synthetic.ts';
import { trainDemoModels } from '../src/training/train-demo-models.ts';
import { demoModels, removeTempDirs, tempDir } from './support/models.ts';

afterAll(removeTempDirs);

describe('evaluation', () => {
  it('computes AUC as the share of positive/negative pairs ranked right, ties counting half', () => {
    // pairs (pos, neg): (0.9,0.1) right, (0.9,0.5) right, (0.5,0.1) right, (0.5,0.5) tie → 3.5 / 4
    expect(auc([0.9, 0.5, 0.1, 0.5], [1, 1, 0, 0])).toBeCloseTo(3.5 / 4, 12);
    expect(auc([0.1, 0.2, 0.3], [1, 0, 0])).toBe(0);
    expect(auc([0.1, 0.2], [1, 1])).toBeNaN();
  });

  it('computes log-loss as the mean cross-entropy', () => {
    expect(logLoss([0.8, 0.25], [1, 0])).toBeCloseTo(-(Math.log(0.8) + Math.log(0.75)) / 2, 12);
  });
});

describe('logistic regression', () => {
  it('recovers the weights of data drawn from a logistic model', () => {
    const rng = createRng(7);
    const truth = { weights: [1.5, -0.8, 0.05], bias: -0.5 };
    const rows: number[][] = [];
    const labels: number[] = [];
    for (let i = 0; i < 40_000; i++) {
      const x = [normal(rng), rng() * 2, 20 + 10 * normal(rng)];
      const z = truth.bias + truth.weights.reduce((s, w, j) => s + w * x[j]!, 0);
      rows.push(x);
      labels.push(rng() < 1 / (1 + Math.exp(-z)) ? 1 : 0);
    }
    const fit = fitLogisticRegression(rows, labels);
    expect(fit.converged).toBe(true);
    fit.weights.forEach((w, j) => expect(Math.abs(w - truth.weights[j]!)).toBeLessThan(0.1 * Math.abs(truth.weights[j]!) + 0.02));
    expect(Math.abs(fit.bias - truth.bias)).toBeLessThan(0.15);
  });
});

describe('synthetic click world', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = generateDataset(500, 1);
    const b = generateDataset(500, 1);
    const c = generateDataset(500, 2);
    expect(b.rows).toEqual(a.rows);
    expect(Array.from(b.labels)).toEqual(Array.from(a.labels));
    expect(c.rows[0]).not.toEqual(a.rows[0]);
  });

  it('makes clicks depend on every feature in the documented direction', () => {
    const base = sampleInstance(createRng(3));
    const p = trueClickProbability(base);
    expect(trueClickProbability({ ...base, user_affinity: base.user_affinity + 1 })).toBeGreaterThan(p);
    expect(trueClickProbability({ ...base, item_popularity: Math.min(1, base.item_popularity + 0.2) })).toBeGreaterThan(p);
    expect(trueClickProbability({ ...base, recency: base.recency + 10 })).toBeLessThan(p);
    expect(trueClickProbability({ ...base, price: base.price * 2 })).toBeLessThan(p);
    expect(trueClickProbability({ ...base, position: base.position + 1 })).toBeLessThan(p);
  });
});

describe('demo models', () => {
  it('v2, which sees every feature, beats v1 on held-out AUC and log-loss, and nears the truth', async () => {
    const { summary } = await demoModels();
    const [v1, v2] = summary.versions;
    expect(v1!.version).toBe('v1');
    expect(v2!.version).toBe('v2');
    expect(v1!.features.length).toBeLessThan(v2!.features.length);
    expect(v2!.features).toEqual([...features]);
    expect(v1!.auc).toBeGreaterThan(0.55);
    expect(v2!.auc).toBeGreaterThan(v1!.auc + 0.05);
    expect(v2!.logLoss).toBeLessThan(v1!.logLoss);
    expect(summary.oracleAuc).toBeGreaterThanOrEqual(v2!.auc - 0.005);
  });

  it('writes model.json with features, output, metrics and the exported weights', async () => {
    const { dir, summary } = await demoModels();
    for (const v of summary.versions) {
      const meta = VersionMetadata.parse(JSON.parse(await readFile(join(dir, 'recommend', v.version, 'model.json'), 'utf8')));
      expect(meta.features).toEqual(v.features);
      expect(meta.metrics.auc).toBeCloseTo(v.auc, 5);
      expect(meta.metrics.logLoss).toBeCloseTo(v.logLoss, 5);
      expect((meta.logisticRegression as { weights: number[] }).weights).toEqual(v.weights);
    }
    const model = JSON.parse(await readFile(join(dir, 'recommend', 'model.json'), 'utf8'));
    expect(model).toMatchObject({ defaultVersion: 'v1', fallbackVersion: 'v1', knobs: { blend: { min: 0, max: 1 }, blendWith: { default: 'v1' } } });
  });

  it('writes an ONNX graph MatMul → Add → Sigmoid over float [N, F]', async () => {
    const { dir } = await demoModels();
    const decoded = decodeModel(await readFile(join(dir, 'recommend', 'v2', 'model.onnx'))) as {
      ir_version: number;
      opset_import: { version: number }[];
      graph: { node: { op_type: string }[]; input: { name: string; type: { tensor_type: { elem_type: number; shape: { dim: object[] } } } }[]; initializer: { name: string; dims: number[] }[] };
    };
    expect(decoded.ir_version).toBe(8);
    expect(decoded.opset_import[0]!.version).toBe(13);
    expect(decoded.graph.node.map((n) => n.op_type)).toEqual(['MatMul', 'Add', 'Sigmoid']);
    expect(decoded.graph.input[0]!.type.tensor_type).toEqual({ elem_type: 1, shape: { dim: [{ dim_param: 'N' }, { dim_value: 5 }] } });
    expect(decoded.graph.initializer.map((t) => [t.name, t.dims])).toEqual([
      ['W', [5, 1]],
      ['B', [1]],
    ]);
  });

  it('ONNX Runtime outputs equal sigmoid(x·w + b) from the weights in model.json to 1e-6', async () => {
    const { dir } = await demoModels();
    const rng = createRng(99);
    const rows = Array.from({ length: 2000 }, () => sampleInstance(rng));
    // extremes saturate the sigmoid on both sides
    rows.push({ user_affinity: 8, item_popularity: 1, recency: 0, price: 1, position: 1 }, { user_affinity: -8, item_popularity: 0, recency: 60, price: 900, position: 10 });
    for (const version of ['v1', 'v2']) {
      const meta = JSON.parse(await readFile(join(dir, 'recommend', version, 'model.json'), 'utf8'));
      const { weights, bias } = meta.logisticRegression as { weights: number[]; bias: number };
      const f: string[] = meta.features;
      const session = await ort.InferenceSession.create(await readFile(join(dir, 'recommend', version, 'model.onnx')));
      try {
        const data = Float32Array.from(rows.flatMap((r) => f.map((k) => r[k as keyof typeof r])));
        const out = await session.run({ [meta.input]: new ort.Tensor('float32', data, [rows.length, f.length]) });
        const got = out[meta.output]!.data as Float32Array;
        expect(got.length).toBe(rows.length);
        let worst = 0;
        rows.forEach((r, i) => {
          const z = bias + f.reduce((s, k, j) => s + weights[j]! * r[k as keyof typeof r], 0);
          worst = Math.max(worst, Math.abs(got[i]! - 1 / (1 + Math.exp(-z))));
        });
        expect(worst).toBeLessThanOrEqual(1e-6);
      } finally {
        await session.release();
      }
    }
  });

  it('training is deterministic: the same seed writes the same bytes', async () => {
    const { dir } = await demoModels();
    const again = await tempDir();
    const lines: string[] = [];
    await trainDemoModels(again, { log: (l) => lines.push(l) });
    for (const file of ['recommend/model.json', 'recommend/v1/model.onnx', 'recommend/v1/model.json', 'recommend/v2/model.onnx', 'recommend/v2/model.json']) {
      expect(Buffer.compare(await readFile(join(again, file)), await readFile(join(dir, file))), file).toBe(0);
    }
    expect(lines.some((l) => /iteration \d+: train log-loss/.test(l))).toBe(true);
    expect(lines.some((l) => /recommend\/v2: held-out AUC 0\.\d+/.test(l))).toBe(true);
  });
});
