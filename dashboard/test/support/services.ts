import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

/** A port nobody listens on right now (the OS picks it; the child process then binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface RunningService {
  name: string;
  url: string;
  /** What the process wrote to stderr, for failure messages. */
  log: () => string;
  stop: () => Promise<void>;
}

/** The real adapters' switches: the browser test runs every service on its embedded default. */
const REAL_ADAPTER_VARS = ['REDIS_URL', 'KAFKA_BROKERS', 'CLICKHOUSE_URL', 'PORT', 'EXPERIMENT_SERVICE_URL', 'AGGREGATOR_URL', 'GATEWAY_URL', 'MODEL_SERVER_URL'];

/**
 * Starts another service of the repository as a child process (`node --import tsx
 * <service>/src/server.ts`), the way `npm start` runs it, and waits for its /healthz.
 */
export async function startService(name: string, env: Record<string, string>, timeoutMs = 45_000): Promise<RunningService> {
  const entry = join(REPO_ROOT, name, 'src/server.ts');
  if (!existsSync(entry)) throw new Error(`${entry} does not exist`);
  const port = await freePort();
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !REAL_ADAPTER_VARS.includes(k)));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: REPO_ROOT,
    env: { ...base, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000);
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${stderr}`);
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return { name, url, log: () => stderr, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`${name} did not answer /healthz within ${timeoutMs} ms:\n${stderr}`);
}

/** Debian's chromium (SPEC §9); never a downloaded browser. */
export function chromiumPath(): string | undefined {
  return ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p));
}
