/**
 * Debian's nginx for benches: its config, and the tiny JSON upstream of bench/lib/upstream.ts served by Debian's nginx instead (`return 200`),
 * for benches where the upstream must cost next to nothing beside the server measured: one nginx
 * worker answering on `count` ports, each port an upstream of its own. Null without nginx.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const UPSTREAM_BODY = JSON.stringify({ model: 'recommend', version: 'v1', predictions: [0.42] });

export interface NginxUpstreams {
  urls: string[];
  pid: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

export async function startNginxUpstreams(count: number): Promise<NginxUpstreams | null> {
  if (spawnSync('nginx', ['-v']).error) return null;
  const dir = await mkdtemp(join(tmpdir(), 'bunryu-nginx-upstream-'));
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  const servers = ports
    .map((port) => `  server {\n    listen 127.0.0.1:${port};\n    location / { default_type application/json; return 200 '${UPSTREAM_BODY}'; }\n  }`)
    .join('\n');
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, nginxConf(dir, 1, `  keepalive_requests 100000000;\n  keepalive_timeout 120s;\n${servers}`));
  const child = spawn('nginx', ['-c', conf, '-p', dir], { stdio: 'ignore' });
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  for (let i = 0; ; i++) {
    const up = await Promise.all(urls.map((u) => fetch(u, { method: 'POST', body: '{}' }).then((r) => r.ok, () => false)));
    if (up.every(Boolean)) break;
    if (i > 50 || child.exitCode !== null) {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error('nginx did not answer as an upstream');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    urls,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => void rm(dir, { recursive: true, force: true }).then(() => resolve());
        if (child.exitCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGQUIT');
      }),
  };
}

/** A foreground nginx config keeping every file under `dir`, with `http` holding `body`. */
export function nginxConf(dir: string, workers: number | 'auto', body: string): string {
  return `worker_processes ${workers};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${body}
}
`;
}
