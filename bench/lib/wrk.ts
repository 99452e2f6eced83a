/**
 * HTTP load with wrk (Debian's package), the tool SPEC §7's baselines were measured with: written
 * in C on epoll, it leaves more of the two cores to the servers it measures than a Node load
 * generator does, and reports latency percentiles in microseconds. `ratePerSecond` paces every
 * connection (wrk's per-request delay) for latency at a given load.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadResult } from './load.ts';

export interface WrkOptions {
  url: string;
  connections?: number;
  threads?: number;
  seconds?: number;
  method?: 'GET' | 'POST';
  body?: string;
  headers?: Record<string, string>;
  /** Paced load: each connection waits so that all together send about this many requests/s. */
  ratePerSecond?: number;
  /** CPUs wrk may run on (`taskset -c` list), to keep it off the cores of the server measured. */
  cpus?: string;
}

export function wrkInstalled(): boolean {
  return !spawnSync('wrk', ['--version']).error;
}

export async function wrk(o: WrkOptions): Promise<LoadResult> {
  const connections = o.connections ?? 50;
  const dir = await mkdtemp(join(tmpdir(), 'bunryu-wrk-'));
  try {
    const lua: string[] = [];
    if (o.method) lua.push(`wrk.method = ${JSON.stringify(o.method)}`);
    if (o.body !== undefined) lua.push(`wrk.body = ${luaString(o.body)}`);
    for (const [k, v] of Object.entries(o.headers ?? {})) lua.push(`wrk.headers[${luaString(k)}] = ${luaString(v)}`);
    // wrk delays in whole milliseconds: per connection, one request every `period` ms.
    if (o.ratePerSecond) lua.push(`function delay() return ${Math.max(1, Math.round((connections * 1000) / o.ratePerSecond))} end`);
    const script = join(dir, 'load.lua');
    await writeFile(script, lua.join('\n') + '\n');
    const args = ['-t', String(o.threads ?? 2), '-c', String(connections), '-d', `${o.seconds ?? 5}s`, '--latency', '-s', script, o.url];
    const [command, argv] = o.cpus === undefined ? ['wrk', args] : ['taskset', ['-c', o.cpus, 'wrk', ...args]];
    const out = await new Promise<string>((resolve, reject) =>
      execFile(command, argv, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    return parse(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function luaString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function ms(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n;
}

export function parse(out: string): LoadResult {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : 0;
  };
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    if (!m) throw new Error(`wrk printed no ${p}% latency:\n${out}`);
    return ms(m[1]!, m[2]!);
  };
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!rps) throw new Error(`wrk printed no rate:\n${out}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(rps[1]),
    p50: pct('50'),
    p99: pct('99'),
    errors: socket ? socket.slice(1).reduce((s, n) => s + Number(n), 0) : 0,
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/),
    total: num(/(\d+) requests in /),
  };
}
