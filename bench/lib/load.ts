/**
 * HTTP load for benchmarks: autocannon in a child process, so the load generator does not share
 * the event loop of the server it measures.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const autocannon = fileURLToPath(new URL('../../node_modules/autocannon/autocannon.js', import.meta.url));

export interface LoadOptions {
  url: string;
  connections?: number;
  seconds?: number;
  method?: 'GET' | 'POST';
  body?: string;
  headers?: Record<string, string>;
  /** Fixed request rate (req/s) for latency at a given load; omit for saturation. */
  rate?: number;
  pipelining?: number;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  total: number;
}

export function load(o: LoadOptions): Promise<LoadResult> {
  const args = [autocannon, '-j', '-c', String(o.connections ?? 50), '-d', String(o.seconds ?? 5), '-p', String(o.pipelining ?? 1)];
  if (o.method) args.push('-m', o.method);
  if (o.body !== undefined) args.push('-b', o.body);
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}=${v}`);
  if (o.rate) args.push('-R', String(o.rate));
  args.push(o.url);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => {
      if (err) return reject(err);
      const r = JSON.parse(stdout);
      resolve({
        rps: r.requests.average,
        p50: r.latency.p50,
        p99: r.latency.p99,
        errors: r.errors + r.timeouts,
        non2xx: r.non2xx,
        total: r.requests.total,
      });
    });
  });
}
