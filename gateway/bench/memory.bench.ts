/**
 * SPEC §7: "Gateway memory ≤ 150 MB RSS with 1,000 experiments in its config". The gateway runs
 * as it ships (its bundle, gateway/build.ts), with the benches' fleet of 1,000 running experiments over 50 routes (100
 * full layers of 10), and serves wrk load spread over every route and 100,000 unit ids with exposure
 * logging on; then the resident set of each of its processes is read from /proc. Measured for
 * one worker per core (the default) and for one process.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startChild, type ChildServer } from '../../bench/lib/child.ts';
import { FLEET_ROUTES, fleet } from '../../bench/lib/fleet.ts';
import { processTree, rssMb } from '../../bench/lib/proc.ts';
import type { BenchResult } from '../../bench/lib/result.ts';
import { wrkInstalled } from '../../bench/lib/wrk.ts';
import { buildGateway } from '../build.ts';
import { fakeExperimentService } from './proxy.bench.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3) * 2;
const file = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export async function run(): Promise<BenchResult[]> {
  if (!wrkInstalled()) throw new Error('the memory bench drives its load with wrk: apt-get install wrk');
  if (process.platform !== 'linux') return [{ scenario: 'memory', metric: 'gateway RSS: skipped (reads /proc)', value: 0, unit: 'MB' }];
  const bundle = await buildGateway();
  const dir = await mkdtemp(join(tmpdir(), 'bunryu-gateway-memory-'));
  const children: ChildServer[] = [];
  let es: Server | null = null;
  try {
    const upstream = await startChild(file('../../bench/lib/upstream.ts'));
    children.push(upstream);
    const { routes, experiments } = fleet(() => upstream.url);
    es = await fakeExperimentService({ version: 1, routes: Object.fromEntries(routes.map((r) => [r.key, r])), experiments, metrics: {}, holdout: null, events: {} });
    // Every request: a route and a unit of its own, so assignment, cookies and metrics see real spread.
    const script = join(dir, 'spread.lua');
    await writeFile(
      script,
      `local n = 0
request = function()
  n = n + 1
  local path = "/v1/routes/route-" .. (n % ${FLEET_ROUTES}) .. "/predict"
  return wrk.format("GET", path, { ["x-unit-id"] = "user-" .. ((n * 7919) % 100000), ["x-ab-attr-country"] = "JP" })
end
`,
    );
    const results: BenchResult[] = [];
    for (const workers of [availableParallelism(), 1]) {
      const gateway = await startChild(
        bundle,
        {
          EXPERIMENT_SERVICE_URL: `http://127.0.0.1:${(es.address() as AddressInfo).port}`,
          BUNRYU_DATA_DIR: join(dir, `data-${workers}`),
          GATEWAY_WORKERS: String(workers),
          HOST: '127.0.0.1',
          PORT: '0',
          LOG_LEVEL: 'info',
          KAFKA_BROKERS: '',
        },
        /listening on http:\/\/[\d.]+:(\d+)/,
      );
      children.push(gateway);
      let ready = false;
      for (let i = 0; i < 100 && !ready; i++) {
        ready = (await fetch(`${gateway.url}/readyz`)).ok && (await fetch(`${gateway.url}/v1/routes/route-1/predict`, { headers: { 'x-unit-id': 'u' } })).ok;
        if (!ready) await new Promise((r) => setTimeout(r, 100));
      }
      if (!ready) throw new Error('the gateway did not load the 1,000-experiment config');
      const out = await new Promise<string>((resolve, reject) =>
        execFile('wrk', ['-t', '2', '-c', '50', '-d', `${SECONDS}s`, '-s', script, gateway.url], (err, stdout) => (err ? reject(err) : resolve(stdout))),
      );
      if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`the gateway answered errors under load:\n${out}`);
      const rss = processTree(gateway.process.pid!).map(rssMb);
      const largest = Math.max(...rss);
      const total = rss.reduce((a, b) => a + b, 0);
      const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
      const note = `after ${requests.toLocaleString('en')} requests over ${FLEET_ROUTES} routes; processes ${rss.map((r) => r.toFixed(0)).join(' + ')} MB`;
      if (workers > 1) {
        results.push({ scenario: 'memory', metric: `gateway RSS, 1,000 experiments, largest of ${workers} workers + primary`, value: largest, unit: 'MB', target: '<= 150', note });
        results.push({ scenario: 'memory', metric: `gateway RSS, 1,000 experiments, all ${rss.length} processes`, value: total, unit: 'MB', note });
      } else {
        results.push({ scenario: 'memory', metric: 'gateway RSS, 1,000 experiments, one process', value: total, unit: 'MB', target: '<= 150', note });
      }
      await gateway.stop();
    }
    return results;
  } finally {
    for (const c of children.reverse()) await c.stop();
    es?.closeAllConnections();
    es?.close();
    await rm(dir, { recursive: true, force: true });
  }
}
