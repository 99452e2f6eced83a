import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModelCopy, instance, removeTempDirs, startApp, type TestApp } from './support/models.ts';

let t: TestApp;
let dir: string;

beforeAll(async () => {
  dir = await demoModelCopy();
  t = await startApp(dir);
});
afterAll(async () => {
  await t.close();
  await removeTempDirs();
});

function predict(body: unknown, params?: unknown, model = 'recommend') {
  const headers: Record<string, string> = {};
  if (params !== undefined) headers['x-ab-params'] = typeof params === 'string' ? params : JSON.stringify(params);
  return t.app.inject({ method: 'POST', url: `/v1/models/${model}/predict`, headers, payload: body as object });
}

async function logistic(version: string, x: Record<string, number>): Promise<number> {
  const meta = JSON.parse(await readFile(join(dir, 'recommend', version, 'model.json'), 'utf8'));
  const z = meta.features.reduce((s: number, f: string, j: number) => s + meta.logisticRegression.weights[j] * x[f]!, meta.logisticRegression.bias);
  return 1 / (1 + Math.exp(-z));
}

describe('GET /v1/models', () => {
  it('lists the loaded models and versions with their input features and metrics', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/models' });
    expect(res.statusCode).toBe(200);
    const [model] = res.json().models;
    expect(model).toMatchObject({ name: 'recommend', defaultVersion: 'v1', fallbackVersion: 'v1' });
    expect(model.versions.map((v: { version: string; status: string }) => [v.version, v.status])).toEqual([
      ['v1', 'ready'],
      ['v2', 'ready'],
    ]);
    expect(model.versions[1].features).toEqual(['user_affinity', 'item_popularity', 'recency', 'price', 'position']);
    expect(model.versions[1].metrics.auc).toBeGreaterThan(model.versions[0].metrics.auc);
  });
});

describe('GET /metrics', () => {
  it('counts predict requests by model and served version', async () => {
    const count = async () => {
      const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
      return Number(/bunryu_model_predict_requests_total\{model="recommend",version="v2"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    const before = await count();
    for (let i = 0; i < 3; i++) expect((await predict({ instances: [instance()] }, { version: 'v2' })).statusCode).toBe(200);
    expect((await predict({ instances: [instance()] }, { version: 'v1' })).statusCode).toBe(200);
    expect(await count()).toBe(before + 3);
    expect(await count()).toBe(before + 3);
  });
});

describe('version selection by x-ab-params', () => {
  const x = instance();

  it('answers with the default version when no params are sent', async () => {
    const res = await predict({ instances: [x] });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-model-version']).toBe('v1');
    expect(res.headers['x-model-fallback']).toBeUndefined();
    const body = res.json();
    expect(body).toEqual({ model: 'recommend', version: 'v1', predictions: [expect.any(Number)] });
    expect(Math.abs(body.predictions[0] - (await logistic('v1', x)))).toBeLessThan(1e-6);
  });

  it('answers with the version the params name, scoring each instance in order', async () => {
    const xs = [x, instance({ user_affinity: -2, price: 90 }), instance({ position: 10 })];
    const res = await predict({ instances: xs }, { model: 'recommend', version: 'v2', unrelated: 'ignored' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-model-version']).toBe('v2');
    const body = res.json();
    expect(body.version).toBe('v2');
    expect(body.predictions).toHaveLength(3);
    for (const [i, xi] of xs.entries()) expect(Math.abs(body.predictions[i] - (await logistic('v2', xi)))).toBeLessThan(1e-6);
    const v1 = await predict({ instances: xs }, { version: 'v1' });
    expect(v1.json().predictions).not.toEqual(body.predictions);
  });

  it('takes a bare version number as the v-prefixed folder', async () => {
    for (const version of [2, '2']) {
      const res = await predict({ instances: [x] }, { version });
      expect(res.json().version).toBe('v2');
    }
  });

  it('rejects an unknown version with a 400 naming x-ab-params.version', async () => {
    const res = await predict({ instances: [x] }, { version: 'v9' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'BUNRYU_VALIDATION', details: { fields: [{ path: 'x-ab-params.version' }], versions: ['v1', 'v2'] } });
    expect(res.json().error.message).toMatch(/^x-ab-params\.version: .*v9/);
  });

  it('rejects x-ab-params that are not a JSON object', async () => {
    for (const header of ['{not json', '[1,2]', '"v2"']) {
      const res = await predict({ instances: [x] }, header);
      expect(res.statusCode, header).toBe(400);
      expect(res.json().error.details.fields[0].path).toBe('x-ab-params');
    }
  });

  it('lets x-ab-params.model select the model, and 404s an unknown one', async () => {
    const res = await predict({ instances: [x] }, { model: 'recommend' }, 'other-path-name');
    expect(res.statusCode).toBe(200);
    expect(res.json().model).toBe('recommend');
    const missing = await predict({ instances: [x] }, undefined, 'nope');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toMatchObject({ code: 'BUNRYU_NOT_FOUND', details: { models: ['recommend'] } });
    expect(missing.json().error.message).toContain('nope');
  });
});

describe('blend', () => {
  const xs = [instance(), instance({ user_affinity: -1.5, item_popularity: 0.1 }), instance({ recency: 40, position: 7 })];

  async function scores(version: string): Promise<number[]> {
    return (await predict({ instances: xs }, { version })).json().predictions;
  }

  it('mixes two versions: blend·score(version) + (1 − blend)·score(blendWith default)', async () => {
    const [a, b] = [await scores('v2'), await scores('v1')];
    const res = await predict({ instances: xs }, { version: 'v2', blend: 0.3 });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ model: 'recommend', version: 'v2', blend: { weight: 0.3, with: 'v1' } });
    expect(res.headers['x-model-blend']).toBe('0.3*v2+0.7*v1');
    body.predictions.forEach((p: number, i: number) => expect(p).toBeCloseTo(0.3 * a[i]! + 0.7 * b[i]!, 12));
  });

  it('uses blendWith from the params, and accepts a numeric string weight', async () => {
    const [a, b] = [await scores('v1'), await scores('v2')];
    const body = (await predict({ instances: xs }, { version: 'v1', blend: '0.25', blendWith: 'v2' })).json();
    expect(body.blend).toEqual({ weight: 0.25, with: 'v2' });
    body.predictions.forEach((p: number, i: number) => expect(p).toBeCloseTo(0.25 * a[i]! + 0.75 * b[i]!, 12));
  });

  it('at the ends of the range answers one version alone', async () => {
    const [a, b] = [await scores('v2'), await scores('v1')];
    expect((await predict({ instances: xs }, { version: 'v2', blend: 1 })).json().predictions).toEqual(a);
    expect((await predict({ instances: xs }, { version: 'v2', blend: 0 })).json().predictions).toEqual(b);
  });

  it('rejects a weight outside the declared range or not a number, naming x-ab-params.blend', async () => {
    for (const blend of [1.5, -0.1, 'half', true]) {
      const res = await predict({ instances: xs }, { version: 'v2', blend });
      expect(res.statusCode, String(blend)).toBe(400);
      expect(res.json().error.details.fields[0].path).toBe('x-ab-params.blend');
    }
    const res = await predict({ instances: xs }, { version: 'v2', blend: 0.5, blendWith: 'v7' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details.fields[0].path).toBe('x-ab-params.blendWith');
  });

  it('needs a partner when the model declares no default one', async () => {
    const file = join(dir, 'recommend', 'model.json');
    const original = await readFile(file, 'utf8');
    const meta = JSON.parse(original);
    delete meta.knobs.blendWith;
    await writeFile(file, JSON.stringify(meta));
    try {
      await t.deps.registry.reload();
      const res = await predict({ instances: xs }, { version: 'v2', blend: 0.5 });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.details.fields[0].path).toBe('x-ab-params.blendWith');
      expect((await predict({ instances: xs }, { version: 'v2', blend: 0.5, blendWith: 'v1' })).statusCode).toBe(200);
    } finally {
      await writeFile(file, original);
      await t.deps.registry.reload();
    }
  });

  it('ignores blend for a model that does not declare the knob', async () => {
    const file = join(dir, 'recommend', 'model.json');
    const original = await readFile(file, 'utf8');
    const meta = JSON.parse(original);
    meta.knobs = {};
    await writeFile(file, JSON.stringify(meta));
    try {
      await t.deps.registry.reload();
      const res = await predict({ instances: xs }, { version: 'v2', blend: 0.5 });
      expect(res.statusCode).toBe(200);
      expect(res.json().blend).toBeUndefined();
      expect(res.json().predictions).toEqual(await scores('v2'));
    } finally {
      await writeFile(file, original);
      await t.deps.registry.reload();
    }
  });
});

describe('feature validation', () => {
  async function rejected(body: unknown, params: unknown = { version: 'v2' }) {
    const res = await predict(body, params);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('BUNRYU_VALIDATION');
    return res.json().error as { message: string; details: { fields: { path: string; message: string }[] } };
  }

  it('names a missing feature', async () => {
    const { price: _price, ...x } = instance();
    const e = await rejected({ instances: [instance(), x] });
    expect(e.message).toBe('instances.1.price: is missing');
    expect(e.details.fields).toEqual([{ path: 'instances.1.price', message: 'is missing' }]);
  });

  it('names every non-numeric or non-finite feature', async () => {
    const e = await rejected({ instances: [instance({ recency: '5' }), instance({ position: null, user_affinity: true })] });
    expect(e.details.fields.map((f) => f.path)).toEqual(['instances.0.recency', 'instances.1.user_affinity', 'instances.1.position']);
    expect(e.details.fields[0]!.message).toBe('must be a finite number');
  });

  it('checks only the features the chosen version reads', async () => {
    const onlyV1 = { item_popularity: 0.5, position: 3 };
    expect((await predict({ instances: [onlyV1] }, { version: 'v1' })).statusCode).toBe(200);
    const e = await rejected({ instances: [onlyV1] }, { version: 'v2' });
    expect(e.details.fields.map((f) => f.path)).toEqual(['instances.0.user_affinity', 'instances.0.recency', 'instances.0.price']);
  });

  it('rejects a body without a non-empty instances array of objects', async () => {
    expect((await rejected({})).details.fields[0]!.path).toBe('instances');
    expect((await rejected({ instances: [] })).details.fields[0]!.path).toBe('instances');
    expect((await rejected({ instances: {} })).details.fields[0]!.path).toBe('instances');
    expect((await rejected({ instances: [instance(), 3, [1]] })).details.fields.map((f) => f.path)).toEqual(['instances.1', 'instances.2']);
  });

  it('rejects a body that is not JSON', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/models/recommend/predict', headers: { 'content-type': 'application/json' }, payload: '{"instances": [' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('BUNRYU_INVALID_JSON');
  });
});
