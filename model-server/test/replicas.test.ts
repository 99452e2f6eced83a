/**
 * Several model-servers on one model directory (the docker-compose volume, SPEC §12): a version
 * registered through one replica is served by every replica, and no request to any of them fails
 * meanwhile. Real processes, the way they are deployed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { logisticRegressionOnnx } from '../src/onnx/logistic-regression-onnx.ts';
import { demoModelCopy, instance, removeTempDirs, until } from './support/models.ts';

const SERVER = fileURLToPath(new URL('../src/server.ts', import.meta.url));
const TOKEN = 'replica-admin-token';
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  await removeTempDirs();
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

async function replica(dir: string): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), MODEL_DIR: dir, MODEL_WATCH: 'true', MODEL_TRAIN_IF_EMPTY: 'false', BUNRYU_ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${url}/readyz`).catch(() => null))?.status === 200, 30_000);
  return url;
}

const predict = (url: string, params?: object) =>
  fetch(`${url}/v1/models/recommend/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(params ? { 'x-ab-params': JSON.stringify(params) } : {}) },
    body: JSON.stringify({ instances: [instance()] }),
  });

describe('two model-servers on one model directory', () => {
  it('both serve a version registered through one of them, and no request fails meanwhile', async () => {
    const dir = await demoModelCopy();
    const [a, b] = await Promise.all([replica(dir), replica(dir)]);
    const meta = await readFile(join(dir, 'recommend', 'v2', 'model.json'), 'utf8');
    const m = JSON.parse(meta);
    const onnx = logisticRegressionOnnx({ input: m.input, output: m.output, features: m.features, weights: m.logisticRegression.weights, bias: m.logisticRegression.bias + 0.5 });

    // Steady load on both replicas, on the default version, for the whole registration.
    let stop = false;
    const statuses = new Map<number, number>();
    let sent = 0;
    const load = async (url: string) => {
      while (!stop) {
        sent++;
        const res = await predict(url);
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    };
    const workers = [a, a, b, b].map(load);

    const form = new FormData();
    form.append('model', new Blob([new Uint8Array(onnx)]), 'model.onnx');
    form.append('meta', new Blob([meta]), 'model.json');
    const put = await fetch(`${a}/v1/models/recommend/versions/v3`, { method: 'PUT', body: form, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(put.status).toBe(201);
    expect((await put.json()).status).toBe('ready');
    // The other replica sees the new folder through its watcher.
    await until(async () => (await predict(b, { version: 'v3' })).headers.get('x-model-version') === 'v3', 10_000);
    const viaA = await (await predict(a, { version: 'v3' })).json();
    const viaB = await (await predict(b, { version: 'v3' })).json();
    expect(viaB.predictions).toEqual(viaA.predictions);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(workers);
    expect([...statuses.keys()]).toEqual([200]);
    expect(sent).toBeGreaterThan(50);
    console.log(`replicas: ${sent} requests while registering, all 200`);
  }, 90_000);
});
