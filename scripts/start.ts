/**
 * `npm start`: runs all five services on the embedded defaults (or the real adapters when
 * REDIS_URL / KAFKA_BROKERS / CLICKHOUSE_URL are set), waits until each is healthy and prints
 * the URLs. Ctrl-C stops them all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SERVICES } from './services.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const children: ChildProcess[] = [];
let stopping = false;

function startService(name: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', `${name}/src/server.ts`], {
    cwd: root,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const prefix = `[${name}] `;
  const forward = (stream: NodeJS.ReadableStream, out: NodeJS.WriteStream) => {
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) out.write(prefix + line + '\n');
    });
  };
  forward(child.stdout!, process.stdout);
  forward(child.stderr!, process.stderr);
  child.on('exit', (code, signal) => {
    if (stopping) return;
    process.stderr.write(`${prefix}exited (${signal ?? code}); stopping everything\n`);
    void stopAll(1);
  });
  return child;
}

async function waitHealthy(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`port ${port} not healthy after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopAll(code: number): Promise<never> {
  stopping = true;
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)));
  process.exit(code);
}

process.once('SIGINT', () => void stopAll(0));
process.once('SIGTERM', () => void stopAll(0));

for (const s of SERVICES) children.push(startService(s.name));
await Promise.all(SERVICES.map((s) => waitHealthy(Number(process.env[`${s.name.toUpperCase().replace('-', '_')}_PORT`] ?? s.port), 60_000)));

process.stdout.write('\nbunryu is up:\n');
for (const s of SERVICES) process.stdout.write(`  ${s.name.padEnd(20)} http://127.0.0.1:${s.port}\n`);
process.stdout.write('\nCtrl-C stops everything.\n');
