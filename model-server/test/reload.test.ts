import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Pool } from 'undici';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_ADMIN_TOKEN } from '@bunryu/platform/auth';
import { DataType, encodeModel } from '../src/onnx/onnx-proto.ts';
import { logisticRegressionOnnx } from '../src/onnx/logistic-regression-onnx.ts';
import { demoModelCopy, instance, removeTempDirs, startApp, tempDir, until, type TestApp } from './support/models.ts';

const ADMIN = { authorization: `Bearer ${DEFAULT_ADMIN_TOKEN}` };
const open: TestApp[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});
afterAll(removeTempDirs);

async function start(dir: string, env: Record<string, string> = {}): Promise<TestApp> {
  const t = await startApp(dir, env);
  open.push(t);
  return t;
}

const x = instance();

async function predict(t: TestApp, params: object) {
  return t.app.inject({ method: 'POST', url: '/v1/models/recommend/predict', headers: { 'x-ab-params': JSON.stringify(params) }, payload: { instances: [x, instance({ position: 9 })] } });
}

/** Rewrites v2 as a logistic regression with the given bias (same features), atomically. */
async function writeV2(dir: string, bias: number): Promise<void> {
  const meta = JSON.parse(await readFile(join(dir, 'recommend', 'v2', 'model.json'), 'utf8'));
  const bytes = logisticRegressionOnnx({ input: meta.input, output: meta.output, features: meta.features, weights: meta.logisticRegression.weights, bias });
  await writeFile(join(dir, 'recommend', 'v2', 'model.onnx.next'), bytes);
  const { rename } = await import('node:fs/promises');
  await rename(join(dir, 'recommend', 'v2', 'model.onnx.next'), join(dir, 'recommend', 'v2', 'model.onnx'));
}

describe('hot reload', () => {
  it('drops and fails no request while reloads swap the models under concurrent load', async () => {
    const dir = await demoModelCopy();
    const t = await start(dir);
    const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const pool = new Pool(address, { connections: 16 });
    const body = JSON.stringify({ instances: [x] });
    const headers = { 'content-type': 'application/json', 'x-ab-params': JSON.stringify({ version: 'v2', blend: 0.5 }) };

    // Two distinct v2 models the reloads alternate between; each answer must be one of them.
    const before = (await predict(t, { version: 'v2', blend: 0.5 })).json().predictions[0] as number;
    const metaV2 = JSON.parse(await readFile(join(dir, 'recommend', 'v2', 'model.json'), 'utf8'));
    await writeV2(dir, metaV2.logisticRegression.bias + 1);
    await t.deps.registry.reload();
    const after = (await predict(t, { version: 'v2', blend: 0.5 })).json().predictions[0] as number;
    expect(after).not.toBeCloseTo(before, 6);

    const statuses = new Map<number, number>();
    const answers = new Set<string>();
    let stop = false;
    let sent = 0;
    const worker = async () => {
      while (!stop && sent < 20_000) {
        sent++;
        const res = await pool.request({ path: '/v1/models/recommend/predict', method: 'POST', headers, body });
        const json = (await res.body.json()) as { predictions: number[] };
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode === 200) answers.add(json.predictions[0]!.toFixed(6));
      }
    };
    const load = Array.from({ length: 32 }, worker);
    const reloads: number[] = [];
    for (let i = 0; i < 12; i++) {
      await writeV2(dir, metaV2.logisticRegression.bias + (i % 2 === 0 ? 0 : 1));
      const res = await t.app.inject({ method: 'POST', url: '/v1/models/reload', headers: ADMIN });
      expect(res.statusCode).toBe(200);
      reloads.push(res.json().generation);
      await new Promise((r) => setTimeout(r, 40));
    }
    stop = true;
    await Promise.all(load);
    await pool.close();

    expect(sent).toBeGreaterThan(100);
    expect(Object.fromEntries(statuses)).toEqual({ 200: sent });
    expect([...answers].sort()).toEqual([before.toFixed(6), after.toFixed(6)].sort());
    expect(new Set(reloads).size).toBe(12);
    // Replaced generations release their sessions once their requests are done.
    await until(() => t.deps.registry.releasedSessions >= 2 * 12);
  });

  it('reloads by itself when a file under the model directory changes', async () => {
    const dir = await demoModelCopy();
    const t = await start(dir, { MODEL_WATCH: 'true' });
    const first = t.deps.registry.generation.id;
    const metaV2 = JSON.parse(await readFile(join(dir, 'recommend', 'v2', 'model.json'), 'utf8'));
    const before = (await predict(t, { version: 'v2' })).json().predictions;
    await writeV2(dir, metaV2.logisticRegression.bias - 2);
    await until(() => t.deps.registry.generation.id > first);
    const after = (await predict(t, { version: 'v2' })).json().predictions;
    expect(after[0]).toBeLessThan(before[0]);
  });

  it('keeps serving the loaded models when the directory cannot be read', async () => {
    const dir = await demoModelCopy();
    const t = await start(dir);
    await rm(dir, { recursive: true });
    const res = await t.app.inject({ method: 'POST', url: '/v1/models/reload', headers: ADMIN });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.message).toMatch(/previous models keep serving/);
    expect((await predict(t, { version: 'v2' })).statusCode).toBe(200);
  });
});

describe('fallback', () => {
  it('a corrupt model file makes its version answer from the fallback, with x-model-fallback', async () => {
    const dir = await demoModelCopy();
    const t = await start(dir, { MODEL_WATCH: 'true' });
    const v1 = (await predict(t, { version: 'v1' })).json().predictions;
    const first = t.deps.registry.generation.id;
    await writeFile(join(dir, 'recommend', 'v2', 'model.onnx'), Buffer.from('this is not an ONNX model'));
    await until(() => t.deps.registry.generation.id > first);

    const res = await predict(t, { version: 'v2' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-model-fallback']).toBe('true');
    expect(res.headers['x-model-version']).toBe('v1');
    const body = res.json();
    expect(body).toMatchObject({ model: 'recommend', version: 'v1', fallback: [{ from: 'v2', to: 'v1' }] });
    expect(body.fallback[0].reason).toMatch(/^failed to load: model\.onnx/);
    expect(body.predictions).toEqual(v1);

    const models = (await t.app.inject({ method: 'GET', url: '/v1/models' })).json().models[0];
    expect(models.versions[1]).toMatchObject({ version: 'v2', status: 'failed', error: expect.stringMatching(/model\.onnx/) });
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/bunryu_model_fallbacks_total\{model="recommend",from="v2",to="v1"[^}]*\} 1/);
    // A healthy version is untouched.
    expect((await predict(t, { version: 'v1' })).headers['x-model-fallback']).toBeUndefined();
  });

  it('falls back when a run throws, not only when a load fails', async () => {
    const dir = await demoModelCopy();
    // A graph that loads and runs one instance, but fails on more: Reshape to a fixed [1, 5].
    const meta = JSON.parse(await readFile(join(dir, 'recommend', 'v2', 'model.json'), 'utf8'));
    const bytes = encodeModel({
      graph: {
        name: 'breaks_on_batches',
        nodes: [
          { opType: 'Reshape', inputs: ['features', 'one_row'], outputs: ['row'] },
          { opType: 'MatMul', inputs: ['row', 'W'], outputs: ['z0'] },
          { opType: 'Add', inputs: ['z0', 'B'], outputs: ['z'] },
          { opType: 'Sigmoid', inputs: ['z'], outputs: ['click_probability'] },
        ],
        initializers: [
          { name: 'one_row', dims: [2], int64s: [1, 5] },
          { name: 'W', dims: [5, 1], floats: meta.logisticRegression.weights },
          { name: 'B', dims: [1], floats: [meta.logisticRegression.bias] },
        ],
        inputs: [{ name: 'features', elemType: DataType.FLOAT, shape: ['N', 5] }],
        outputs: [{ name: 'click_probability', elemType: DataType.FLOAT, shape: ['N', 1] }],
      },
    });
    await writeFile(join(dir, 'recommend', 'v2', 'model.onnx'), bytes);
    const t = await start(dir);
    const single = await t.app.inject({ method: 'POST', url: '/v1/models/recommend/predict', headers: { 'x-ab-params': '{"version":"v2"}' }, payload: { instances: [x] } });
    expect(single.statusCode).toBe(200);
    expect(single.headers['x-model-fallback']).toBeUndefined();

    const batch = await predict(t, { version: 'v2' });
    expect(batch.statusCode).toBe(200);
    expect(batch.headers['x-model-fallback']).toBe('true');
    expect(batch.json()).toMatchObject({ version: 'v1', fallback: [{ from: 'v2', to: 'v1', reason: expect.stringMatching(/^run failed/) }] });
  });

  it('answers 503 with a clear message when neither the version nor its fallback can answer', async () => {
    const dir = await demoModelCopy();
    await writeFile(join(dir, 'recommend', 'v1', 'model.onnx'), Buffer.alloc(64, 7));
    await writeFile(join(dir, 'recommend', 'v2', 'model.onnx'), Buffer.alloc(64, 9));
    const t = await start(dir);
    const res = await predict(t, { version: 'v2' });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('BUNRYU_MODEL_UNAVAILABLE');
    expect(res.json().error.message).toMatch(/model recommend version v2 cannot answer \(failed to load: .*\), nor can its fallback v1/);
    // The fallback version itself has nothing further to fall back to.
    const own = await predict(t, { version: 'v1' });
    expect(own.statusCode).toBe(503);
    expect(own.json().error.message).toMatch(/version v1 cannot answer .* no other fallback version/);
    expect((await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
  });

  it('a model whose model.json is invalid answers 503 naming the file and field', async () => {
    const dir = await demoModelCopy();
    const meta = JSON.parse(await readFile(join(dir, 'recommend', 'model.json'), 'utf8'));
    await writeFile(join(dir, 'recommend', 'model.json'), JSON.stringify({ ...meta, fallbackVersion: 'v7' }));
    const t = await start(dir);
    const res = await predict(t, { version: 'v2' });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.message).toBe('model recommend cannot answer: recommend/model.json: fallbackVersion names version "v7", which has no folder');
  });

  it('a version without a readable model.json fails alone and falls back', async () => {
    const dir = await demoModelCopy();
    await writeFile(join(dir, 'recommend', 'v2', 'model.json'), '{"features": []');
    const t = await start(dir);
    const res = await predict(t, { version: 'v2' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ version: 'v1', fallback: [{ from: 'v2', to: 'v1', reason: expect.stringMatching(/^failed to load: model\.json/) }] });
  });
});

describe('first start', () => {
  it('trains the demo models into an empty model directory', async () => {
    const dir = await tempDir();
    const t = await start(dir, { MODEL_TRAIN_IF_EMPTY: 'true' });
    const res = await predict(t, { version: 'v2' });
    expect(res.statusCode).toBe(200);
    expect(res.json().predictions).toHaveLength(2);
    const models = (await t.app.inject({ method: 'GET', url: '/v1/models' })).json().models;
    expect(models.map((m: { name: string }) => m.name)).toEqual(['recommend']);
  });
});
