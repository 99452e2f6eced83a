/**
 * `npm start`: runs all five services on the embedded defaults (or the real adapters when
 * REDIS_URL / KAFKA_BROKERS / CLICKHOUSE_URL are set), waits until each is healthy and prints
 * the URLs. Ctrl-C stops them all. `--demo` drives synthetic users through the demo experiment;
 * `--rollouts` starts the two guarded rollouts of scripts/demo-rollouts.ts and their traffic.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { driveDemoTraffic } from './demo-traffic.ts';
import { driveInterleavingTraffic } from './demo-interleaving.ts';
import { DEMO_ROLLOUT_VISITS_PER_SECOND, seedRollouts, watchRollouts } from './demo-rollouts.ts';
import { seedDemo } from './seed-demo.ts';
import { seedDemoShadow } from './demo-shadow.ts';
import { SERVICES, serviceArgs, type ServiceName } from './services.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
// One token for the local demo unless the user set their own; the services read it from env.
const token = process.env.BUNRYU_ADMIN_TOKEN ?? 'dev-admin-token';
process.env.BUNRYU_ADMIN_TOKEN = token;
process.env.EXPERIMENT_SERVICE_TOKEN ??= token;
// The aggregator's results need a viewer token: the autopilot reads them with this one.
process.env.AUTOPILOT_AGGREGATOR_TOKEN ??= token;
const url = (port: number) => `http://127.0.0.1:${port}`;
const children: ChildProcess[] = [];
let stopping = false;

async function startService(name: ServiceName, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, await serviceArgs(name), {
    cwd: root,
    env: { ...process.env, PORT: String(port) },
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

if (!existsSync(`${root}/model-server/models/recommend`)) {
  process.stdout.write('training the demo models (first start only)\n');
  const r = spawnSync('npm', ['run', 'train', '-w', 'model-server'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// The experiment-service first: the others read their config from it.
const [first, ...rest] = SERVICES;
children.push(await startService(first.name, first.port));
await waitHealthy(first.port, 90_000);
for (const s of rest) children.push(await startService(s.name, s.port));
await Promise.all(rest.map((s) => waitHealthy(s.port, 90_000)));
await seedDemo({
  experimentServiceUrl: url(8081),
  modelServerUrl: url(8082),
  token,
  log: (line) => process.stdout.write(`[seed] ${line}\n`),
});

process.stdout.write('\nbunryu is up:\n');
for (const s of SERVICES) process.stdout.write(`  ${s.name.padEnd(20)} ${url(s.port)}\n`);
process.stdout.write(`\nDashboard sign-in token: ${token}\n`);
process.stdout.write(`Try: curl -H 'x-unit-id: user-1' -H 'content-type: application/json' \\\n  -d '{"instances":[{"user_affinity":0.5,"item_popularity":0.2,"recency":3,"price":20,"position":1}]}' ${url(8080)}/v1/routes/recommend/predict -i\n`);
process.stdout.write('`npm run demo` drives synthetic users through it (add `-- --rollouts` for two guarded rollouts). Ctrl-C stops everything.\n');

const demo = process.argv.includes('--demo');
const rollouts = process.argv.includes('--rollouts');
const stopTraffic = new AbortController();
process.once('SIGINT', () => stopTraffic.abort());
const drivers: Promise<unknown>[] = [];
if (demo) {
  // A v3 shadowing 10% of the demo route: the routes page compares it with what users got.
  await seedDemoShadow({ experimentServiceUrl: url(8081), modelServerUrl: url(8082), token, log: (line) => process.stdout.write(`[seed] ${line}\n`) });
  process.stdout.write('\n[demo] synthetic users are visiting the gateway; watch the dashboard\n');
  drivers.push(
    driveDemoTraffic({
      gatewayUrl: url(8080),
      signal: stopTraffic.signal,
      concurrency: 4,
      // Returning users: their last two weeks first, so CUPED has pre-exposure behaviour to use.
      historyDays: 14,
      log: (line) => process.stdout.write(`[demo] ${line}\n`),
    }),
    // The ranked route's interleaving experiment of v1 and v2 (SPEC §13), at a gentler pace.
    driveInterleavingTraffic({ gatewayUrl: url(8080), signal: stopTraffic.signal, concurrency: 2, visitsPerSecond: 20 }),
  );
}
if (rollouts) {
  const log = (line: string) => process.stdout.write(`[rollouts] ${line}\n`);
  const seeded = await seedRollouts({ experimentServiceUrl: url(8081), modelServerUrl: url(8082), token, log });
  log(`two guarded rollouts run on their own routes, ${DEMO_ROLLOUT_VISITS_PER_SECOND} visits/s each; watch ${url(8084)} → Experiments → ${seeded.map((r) => r.experiment).join(' / ')} → Release`);
  log('expect the faulty one rolled back within about a minute and the sound one promoted after about three minutes');
  // Mostly new users on every visit, so each step reaches its units within its minute.
  seeded.forEach((r, i) =>
    drivers.push(driveDemoTraffic({ gatewayUrl: url(8080), route: r.route, users: 1_000_000, seed: 1000 + i, concurrency: 4, visitsPerSecond: DEMO_ROLLOUT_VISITS_PER_SECOND, signal: stopTraffic.signal })),
  );
  drivers.push(watchRollouts({ experimentServiceUrl: url(8081), token, rollouts: seeded, signal: stopTraffic.signal, log }));
}
await Promise.all(drivers);
