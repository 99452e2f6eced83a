import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assign, formatAssignmentsHeader } from '@bunryu/core';
import { startGateway, tempDir, until, type TestGateway } from './support/gateway.ts';
import { closedPort, startUpstream, type TestUpstream } from './support/upstream.ts';

const SERVER = fileURLToPath(new URL('../../experiment-service/src/server.ts', import.meta.url));
const TOKEN = 'integration-admin-token';

/**
 * The gateway against the real experiment-service (run as its own process, as in production):
 * the snapshot it serves and the changes it streams reach the gateway's assignments.
 */
describe('gateway with the real experiment-service', () => {
  let es: ChildProcess;
  let esUrl: string;
  let up: TestUpstream;
  let gw: TestGateway;

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(esUrl + path, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const assignmentsOf = async (unit: string) =>
    (await fetch(`${gw.url}/v1/routes/recommend/x`, { headers: { 'x-unit-id': unit } })).headers.get('x-ab-assignments');

  beforeAll(async () => {
    up = await startUpstream();
    const port = await closedPort();
    esUrl = `http://127.0.0.1:${port}`;
    es = spawn(process.execPath, ['--import', 'tsx', SERVER], {
      env: { ...process.env, PORT: String(port), BUNRYU_DATA_DIR: await tempDir(), BUNRYU_ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'warn', REDIS_URL: '' },
      stdio: 'ignore',
    });
    await until(async () => (await fetch(`${esUrl}/healthz`).then((r) => r.ok, () => false)), 30_000, 'the experiment-service');
    await admin('PUT', '/v1/routes/recommend', { upstream: up.url, path: '/predict', defaultParams: { model: 'recommend' } });
    gw = await startGateway({ experimentService: esUrl, env: { EXPERIMENT_SERVICE_TOKEN: TOKEN } });
    await until(() => gw.deps.store.current?.routes.has('recommend') === true, 10_000, 'the route');
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    if (es && es.exitCode === null) {
      const exited = new Promise((r) => es.once('exit', r));
      es.kill('SIGTERM');
      await exited;
    }
    await up?.close();
  });

  it('assigns from the streamed snapshot and follows start, ramp and rollback live', async () => {
    expect(await assignmentsOf('u-1')).toBe('');
    await admin('POST', '/v1/experiments', {
      key: 'ranker',
      route: 'recommend',
      variants: [
        { key: 'control', weight: 50, params: { version: '1' } },
        { key: 'treatment', weight: 50, params: { version: '2' } },
      ],
    });
    await admin('POST', '/v1/experiments/ranker/start');
    await until(async () => (await assignmentsOf('u-1')) !== '', 5000, 'the started experiment');

    const units = Array.from({ length: 30 }, (_, i) => `unit-${i}`);
    const snapshot = gw.deps.store.current!.snapshot;
    for (const unit of units) {
      expect(await assignmentsOf(unit)).toBe(formatAssignmentsHeader(assign(snapshot, 'recommend', unit).assignments));
    }
    expect(up.seen.at(-1)!.url).toBe('/predict/x');
    expect(JSON.parse(up.seen.at(-1)!.headers['x-ab-params'] as string).model).toBe('recommend');

    await admin('POST', '/v1/experiments/ranker/ramp', { weights: { control: 0, treatment: 100 } });
    await until(async () => (await Promise.all(units.map(assignmentsOf))).every((a) => a === 'ranker=treatment'), 5000, 'the ramp');

    await admin('POST', '/v1/experiments/ranker/rollback');
    await until(async () => (await Promise.all(units.map(assignmentsOf))).every((a) => a === ''), 5000, 'the rollback');
  });
});
