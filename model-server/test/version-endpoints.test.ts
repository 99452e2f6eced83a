import { readdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { logisticRegressionOnnx } from '../src/onnx/logistic-regression-onnx.ts';
import { demoModelCopy, removeTempDirs, startApp, type TestApp } from './support/models.ts';

const TOKENS = 'releaser:rel-ease-token,viewer:view-only-token';
const open: TestApp[] = [];
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});
afterAll(removeTempDirs);

/** An experiment-service that answers GET /v1/config with `snapshot` (or fails). */
async function configService(snapshot: unknown): Promise<string> {
  const server = createServer((_req, res) => {
    if (snapshot === null) return void res.writeHead(500).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(snapshot));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const route = (version: string) => ({
  key: 'recommend',
  path: '/v1/models/recommend/predict',
  upstream: 'http://127.0.0.1:8082',
  defaultParams: { model: 'recommend', version },
  timeoutMs: 1000,
  updatedAt: '2026-12-01T00:00:00.000Z',
});

async function start(env: Record<string, string> = {}) {
  const dir = await demoModelCopy();
  const t = await startApp(dir, { BUNRYU_TOKENS: TOKENS, ...env });
  open.push(t);
  const base = await t.app.listen({ port: 0, host: '127.0.0.1' });
  return { t, dir, base };
}

async function v2Files(dir: string) {
  const meta = await readFile(join(dir, 'recommend', 'v2', 'model.json'), 'utf8');
  const m = JSON.parse(meta);
  return { onnx: logisticRegressionOnnx({ input: m.input, output: m.output, features: m.features, weights: m.logisticRegression.weights, bias: m.logisticRegression.bias }), meta };
}

function form(parts: { model?: Uint8Array; meta?: string }): FormData {
  const f = new FormData();
  if (parts.model) f.append('model', new Blob([new Uint8Array(parts.model)]), 'model.onnx');
  if (parts.meta !== undefined) f.append('meta', new Blob([parts.meta], { type: 'application/json' }), 'model.json');
  return f;
}

const put = (base: string, path: string, body: FormData | string, token?: string) =>
  fetch(base + path, { method: 'PUT', body, headers: token ? { authorization: `Bearer ${token}` } : {} });

describe('PUT /v1/models/:name/versions/:version', () => {
  it('registers a version from multipart model + meta (releaser), answering 201 with its gates', async () => {
    const { base, dir } = await start();
    const files = await v2Files(dir);
    const res = await put(base, '/v1/models/recommend/versions/v3', form({ model: files.onnx, meta: files.meta }), 'rel-ease-token');
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe('/v1/models/recommend/versions/v3');
    const body = await res.json();
    expect(body).toMatchObject({ model: 'recommend', version: 'v3', status: 'ready', registeredBy: 'releaser-1' });
    expect(body.gates.map((g: { name: string }) => g.name)).toEqual(['loads', 'features', 'smoke', 'latency', 'offline']);
    const got = await (await fetch(`${base}/v1/models/recommend/versions/v3`)).json();
    expect(got).toEqual(body);
    const listed = await (await fetch(`${base}/v1/models`)).json();
    expect(listed.models[0].versions.map((v: { version: string }) => v.version)).toContain('v3');
  });

  it('answers 401 without a token, 403 to a viewer, 415 to JSON, 400 naming a missing part, 404 for an unknown version', async () => {
    const { base, dir } = await start();
    const files = await v2Files(dir);
    expect((await put(base, '/v1/models/recommend/versions/v3', form({ model: files.onnx, meta: files.meta }))).status).toBe(401);
    expect((await put(base, '/v1/models/recommend/versions/v3', form({ model: files.onnx, meta: files.meta }), 'view-only-token')).status).toBe(403);
    expect((await put(base, '/v1/models/recommend/versions/v3', JSON.stringify({}), 'rel-ease-token')).status).toBe(415);
    const missing = await put(base, '/v1/models/recommend/versions/v3', form({ model: files.onnx }), 'rel-ease-token');
    expect(missing.status).toBe(400);
    expect((await missing.json()).error.details.fields).toEqual([{ path: 'meta', message: 'required' }]);
    expect((await fetch(`${base}/v1/models/recommend/versions/v9`)).status).toBe(404);
  });

  it('answers 413 for a model over MODEL_MAX_BYTES and leaves the directory as it was', async () => {
    const { base, dir } = await start({ MODEL_MAX_BYTES: '2048' });
    const before = (await readdir(dir, { recursive: true })).sort();
    const files = await v2Files(dir);
    const big = new Uint8Array(4096);
    big.set(files.onnx);
    const res = await put(base, '/v1/models/recommend/versions/v3', form({ model: big, meta: files.meta }), 'rel-ease-token');
    expect(res.status).toBe(413);
    expect((await res.json()).error.message).toContain('MODEL_MAX_BYTES');
    expect((await readdir(dir, { recursive: true })).sort()).toEqual(before);
  });
});

describe('DELETE /v1/models/:name/versions/:version', () => {
  it('refuses while a route default uses the version, retires it once none does, and answers 503 when it cannot ask', async () => {
    const inUse = await configService({ version: 3, routes: { recommend: route('v2') }, experiments: [], metrics: {}, holdout: null });
    const { base } = await start({ EXPERIMENT_SERVICE_URL: inUse });
    const del = () => fetch(`${base}/v1/models/recommend/versions/v2`, { method: 'DELETE', headers: { authorization: 'Bearer rel-ease-token' } });
    const refused = await del();
    expect(refused.status).toBe(409);
    expect((await refused.json()).error.message).toContain('route recommend (defaultParams)');
    await Promise.all(open.splice(0).map((t) => t.close()));

    const experiment = {
      key: 'ranker-v2', route: 'recommend', layer: 'ranker-v2', trafficPercent: 100, allocation: { start: 0, end: 10_000 }, salt: '', targeting: [], overrides: {},
      variants: [{ key: 'control', weight: 50, params: {} }, { key: 'treatment', weight: 50, params: { version: 'v2' } }],
      metrics: { guardrails: [] }, status: 'running', version: 2, createdAt: '2026-12-01T00:00:00.000Z', updatedAt: '2026-12-01T00:00:00.000Z',
    };
    const tested = await configService({ version: 3, routes: { recommend: route('v1') }, experiments: [experiment], metrics: {}, holdout: null });
    const byExperiment = await start({ EXPERIMENT_SERVICE_URL: tested });
    const inExperiment = await fetch(`${byExperiment.base}/v1/models/recommend/versions/v2`, { method: 'DELETE', headers: { authorization: 'Bearer rel-ease-token' } });
    expect(inExperiment.status).toBe(409);
    expect((await inExperiment.json()).error.message).toContain('experiment ranker-v2 (running, variant treatment)');
    await Promise.all(open.splice(0).map((t) => t.close()));

    const unused = await configService({ version: 3, routes: { recommend: route('v1') }, experiments: [], metrics: {}, holdout: null });
    const second = await start({ EXPERIMENT_SERVICE_URL: unused });
    const ok = await fetch(`${second.base}/v1/models/recommend/versions/v2`, { method: 'DELETE', headers: { authorization: 'Bearer rel-ease-token' } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'retired', retiredBy: 'releaser-1' });
    await Promise.all(open.splice(0).map((t) => t.close()));

    const down = await configService(null);
    const third = await start({ EXPERIMENT_SERVICE_URL: down });
    const unknown = await fetch(`${third.base}/v1/models/recommend/versions/v2`, { method: 'DELETE', headers: { authorization: 'Bearer rel-ease-token' } });
    expect(unknown.status).toBe(503);
  });
});
