import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import { compose, type Deps } from '../src/compose.ts';
import { bearer, definition, testConfig, uniquePrefix } from './support/service.ts';

/**
 * Redis outages against a redis-server of this suite's own, on a free port, without persistence:
 * restarting it is Redis coming back empty. Only the PIDs started here are stopped.
 */
const haveRedisServer = await new Promise<boolean>((resolve) => {
  const p = spawn('redis-server', ['--version'], { stdio: 'ignore' });
  p.on('error', () => resolve(false));
  p.on('exit', (code) => resolve(code === 0));
});
if (!haveRedisServer && process.env.BUNRYU_REQUIRE_INTEGRATION === '1') throw new Error('redis-server is not installed and BUNRYU_REQUIRE_INTEGRATION=1');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return child;
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} did not start`);
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGCONT');
  child.kill('SIGKILL');
  await once(child, 'exit');
}

interface Running {
  url: string;
  app: FastifyInstance;
  deps: Deps;
}

async function startService(redisUrl: string): Promise<Running> {
  const config = testConfig({ REDIS_URL: redisUrl, REDIS_PREFIX: uniquePrefix(), BUNRYU_AUTOPILOT: 'off' });
  const deps = await compose(config);
  const app = await buildApp(config, deps);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, app, deps };
}

async function timed(url: string, init: RequestInit = {}): Promise<{ status: number; body: { error?: { message: string }; checks?: Record<string, string> }; ms: number }> {
  const started = performance.now();
  const res = await fetch(url, init);
  const body = (await res.json()) as never;
  return { status: res.status, body, ms: performance.now() - started };
}

const json = (role: Parameters<typeof bearer>[0], body: unknown): RequestInit => ({
  headers: { ...bearer(role), 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

describe.skipIf(!haveRedisServer)('experiment-service during Redis outages (its own redis-server)', () => {
  let redis: ChildProcess | undefined;
  let service: Running | undefined;
  afterEach(async () => {
    await service?.app.close();
    await service?.deps.close();
    if (redis) await stopRedis(redis);
    service = undefined;
    redis = undefined;
  });

  async function seeded(): Promise<{ port: number; s: Running }> {
    const port = await freePort();
    redis = await startRedis(port);
    const s = (service = await startService(`redis://127.0.0.1:${port}`));
    const r = await fetch(`${s.url}/v1/routes/recommend`, { method: 'PUT', ...json('admin', { upstream: 'http://127.0.0.1:9/predict', defaultParams: { version: '1' } }) });
    expect(r.status).toBe(201);
    const m = await fetch(`${s.url}/v1/metrics/ctr`, { method: 'PUT', ...json('editor', { type: 'proportion', event: 'click' }) });
    expect(m.status).toBe(201);
    const e = await fetch(`${s.url}/v1/experiments`, { method: 'POST', ...json('editor', definition()) });
    expect(e.status).toBe(201);
    return { port, s };
  }

  it('refuses writes with a clear 503 once Redis comes back empty, says why in /readyz, and takes an export back', async () => {
    const { port, s } = await seeded();
    const exported = await (await fetch(`${s.url}/v1/export`, { headers: bearer('admin') })).text();
    const before = await (await fetch(`${s.url}/v1/config`, { headers: bearer('viewer') })).text();
    const epoch = (JSON.parse(before) as { epoch: string }).epoch;
    expect(epoch).toMatch(/^[0-9a-f-]{36}$/);

    await stopRedis(redis!);
    redis = await startRedis(port); // empty: no RDB, no AOF

    let ready = await timed(`${s.url}/readyz`);
    const deadline = Date.now() + 5000;
    while (ready.status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      ready = await timed(`${s.url}/readyz`);
    }
    expect(ready.status).toBe(503);
    expect(ready.body.checks!.store).toMatch(new RegExp(`lost this service's data: epoch ${epoch} \\(config version 3\\) is gone`));
    expect(ready.body.checks!.store).toMatch(/POST \/v1\/import/);

    const write = await timed(`${s.url}/v1/experiments`, { method: 'POST', ...json('editor', definition({ key: 'after-loss' })) });
    expect(write.status).toBe(503);
    expect(write.body.error!.message).toMatch(/lost this service's data/);
    const route = await timed(`${s.url}/v1/routes/search`, { method: 'PUT', ...json('admin', { upstream: 'http://127.0.0.1:9/' }) });
    expect(route.status).toBe(503);
    // No snapshot of the empty store is offered to gateways either.
    expect((await fetch(`${s.url}/v1/config`, { headers: bearer('viewer') })).status).toBe(503);

    const imported = await timed(`${s.url}/v1/import`, { method: 'POST', headers: { ...bearer('admin'), 'content-type': 'application/json' }, body: exported });
    expect(imported.status).toBe(200);
    expect(imported.body).toMatchObject({ version: 3, experiments: 1, routes: 1, metrics: 1 });
    expect((await timed(`${s.url}/readyz`)).status).toBe(200);
    const after = await (await fetch(`${s.url}/v1/config`, { headers: bearer('viewer') })).text();
    const newEpoch = (JSON.parse(after) as { epoch: string }).epoch;
    expect(newEpoch).not.toBe(epoch);
    expect(JSON.parse(after.replace(newEpoch, epoch))).toEqual(JSON.parse(before));
    expect(after.replace(newEpoch, epoch)).toBe(before);
    const again = await (await fetch(`${s.url}/v1/export`, { headers: bearer('admin') })).text();
    expect(again.replace(newEpoch, 'E')).toBe(exported.replace(epoch, 'E'));
    expect((await fetch(`${s.url}/v1/experiments`, { method: 'POST', ...json('editor', definition({ key: 'after-import' })) })).status).toBe(201);
  });

  it('answers a write 503 and /readyz within 1 s while Redis is down or stalled', async () => {
    const { s } = await seeded();
    const write = (i: number) => timed(`${s.url}/v1/routes/r${i}`, { method: 'PUT', ...json('admin', { upstream: 'http://127.0.0.1:9/' }) });

    redis!.kill('SIGSTOP'); // stalled: the connection stays open, answers never come
    for (let i = 0; i < 3; i++) {
      const w = await write(i);
      expect(w.status).toBe(503);
      expect(w.ms).toBeLessThan(1000);
      const r = await timed(`${s.url}/readyz`);
      expect(r.status).toBe(503);
      expect(r.ms).toBeLessThan(1000);
    }

    await stopRedis(redis!); // gone: connections refused
    redis = undefined;
    for (let i = 0; i < 5; i++) {
      const w = await write(i);
      expect(w.status).toBe(503);
      expect(w.body.error!.message).toMatch(/not reachable/);
      expect(w.ms).toBeLessThan(1000);
      const r = await timed(`${s.url}/readyz`);
      expect(r.status).toBe(503);
      expect(r.ms).toBeLessThan(1000);
    }
  });
});
