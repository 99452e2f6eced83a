/**
 * Runs a bench server (TypeScript through tsx, or a built .mjs) in its own process and learns its
 * port from its output: a `PORT <n>` line, or what `ready` matches (its first group is the port).
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface ChildServer {
  port: number;
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export function startChild(script: string, env: Record<string, string> = {}, ready = /PORT (\d+)/): Promise<ChildServer> {
  const child = spawn(process.execPath, script.endsWith('.ts') ? ['--import', 'tsx', script] : [script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = ready.exec(out);
      if (!m) return;
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      const port = Number(m[1]);
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        process: child,
        stop: () =>
          new Promise((r) => {
            if (child.exitCode !== null) return r();
            child.once('exit', () => r());
            child.kill('SIGTERM');
          }),
      });
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before listening: ${out}`)));
  });
}
