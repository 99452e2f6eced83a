/**
 * Runs the five services as separate processes, as in production: each on a free port, with its
 * own data directory, wired to each other by URL, on the embedded defaults or on real Redis and
 * Kafka (whatever `env` says).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceArgs } from '../../../scripts/services.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
export const SERVICE_NAMES = ['experiment-service', 'model-server', 'aggregator', 'gateway', 'dashboard'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export interface Stack {
  url: Record<ServiceName, string>;
  token: string;
  dataDir: string;
  logs: Record<ServiceName, string[]>;
  restart(name: ServiceName): Promise<void>;
  stop(name: ServiceName): Promise<void>;
  start(name: ServiceName): Promise<void>;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function startStack(env: Record<string, string>, modelDir: string): Promise<Stack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bunryu-e2e-'));
  const token = 'e2e-admin-token';
  const ports = Object.fromEntries(await Promise.all(SERVICE_NAMES.map(async (n) => [n, await freePort()] as const))) as Record<ServiceName, number>;
  const url = Object.fromEntries(SERVICE_NAMES.map((n) => [n, `http://127.0.0.1:${ports[n]}`])) as Record<ServiceName, string>;
  const logs = Object.fromEntries(SERVICE_NAMES.map((n) => [n, [] as string[]])) as Record<ServiceName, string[]>;
  const children = new Map<ServiceName, ChildProcess>();
  // The mode decides the adapters: never inherit the CI's REDIS_URL / KAFKA_BROKERS into an embedded stack.
  const inherited = { ...process.env };
  for (const name of ['REDIS_URL', 'REDIS_PREFIX', 'KAFKA_BROKERS', 'CLICKHOUSE_URL', 'PORT']) delete inherited[name];
  const common = {
    ...inherited,
    ...env,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    BUNRYU_DATA_DIR: dataDir,
    BUNRYU_ADMIN_TOKEN: token,
    EXPERIMENT_SERVICE_TOKEN: token,
    AUTOPILOT_AGGREGATOR_TOKEN: token,
    EXPERIMENT_SERVICE_URL: url['experiment-service'],
    MODEL_SERVER_URL: url['model-server'],
    AGGREGATOR_URL: url.aggregator,
    GATEWAY_URL: url.gateway,
    MODEL_DIR: modelDir,
    MODEL_WATCH: 'false',
    AGGREGATOR_CONFIG_REFRESH_MS: '300',
  };

  const start = async (name: ServiceName) => {
    const child = spawn(process.execPath, await serviceArgs(name), {
      cwd: root,
      env: { ...common, PORT: String(ports[name]) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      const log = logs[name];
      log.push(...chunk.toString().split('\n').filter(Boolean));
      if (log.length > 400) log.splice(0, log.length - 400);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    children.set(name, child);
    await waitFor(`${name} /healthz`, async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}: ${logs[name].slice(-10).join('\n')}`);
      return (await fetch(`${url[name]}/healthz`)).ok;
    }, 120_000);
  };
  const stop = async (name: ServiceName) => {
    const child = children.get(name);
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  };

  // The experiment-service first: the others read their config from it.
  await start('experiment-service');
  await Promise.all((['model-server', 'aggregator', 'gateway', 'dashboard'] as const).map(start));
  return {
    url,
    token,
    dataDir,
    logs,
    start,
    stop,
    restart: async (name) => {
      await stop(name);
      await start(name);
    },
    close: async () => {
      await Promise.all(SERVICE_NAMES.map(stop));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A small JSON client for the admin API. */
export function adminClient(baseUrl: string, token: string) {
  return async <T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  };
}
