/**
 * `npm run chaos [-- --short] [-- --only <fault>,...]`: fault injection on the real stack
 * (SPEC §14). See chaos/README.md.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { caughtUp, EXPERIMENT, makeContext, ROUTE, ROUTE_TIMEOUT_MS, type Check, type Fault, type FaultContext } from './lib/fault.ts';
import { root, startStack, TOKEN, waitFor, type Stack } from './lib/stack.ts';
import { readStore, union, type StoredEvent } from './lib/store.ts';
import { Traffic } from './lib/traffic.ts';
import { aggregatorKill, twoAggregatorsOneKilled } from './faults/aggregator.ts';
import { experimentServiceKill } from './faults/experiment-service.ts';
import { gatewayKillDuringKafkaOutage, gatewaySpillDiskFull } from './faults/gateway.ts';
import { kafkaBrokerKill } from './faults/kafka.ts';
import { modelServerKill, modelServerStop } from './faults/model-server.ts';
import { redisRestart, redisRestartEmpty } from './faults/redis.ts';

/** In this order: the empty Redis leaves the service without its state, so it comes last. */
const FAULTS: Fault[] = [
  kafkaBrokerKill,
  aggregatorKill,
  modelServerKill,
  modelServerStop,
  experimentServiceKill,
  twoAggregatorsOneKilled,
  gatewayKillDuringKafkaOutage,
  gatewaySpillDiskFull,
  redisRestart,
  redisRestartEmpty,
];

const RATE = 40;
const UNIT_PREFIX = 'chaos-';

interface Ran {
  fault: Fault;
  traffic: Traffic;
  recoveryMs: number | null;
  checks: Check[];
  error?: string;
}

const print = (line: string) => process.stdout.write(line + '\n');

async function setUp(stack: Stack, ctx: FaultContext): Promise<void> {
  const must = async (what: string, r: Promise<{ status: number | null }>) => {
    const { status } = await r;
    if (status === null || status >= 300) throw new Error(`${what}: ${status}`);
  };
  await must('PUT the route', ctx.admin('PUT', `/v1/routes/${ROUTE}`, {
    upstream: stack.modelServer.url,
    path: '/v1/models/recommend',
    defaultParams: { model: 'recommend', version: 'v1' },
    timeoutMs: ROUTE_TIMEOUT_MS,
    fallback: { status: 200, body: { predictions: [], fallback: true } },
  }));
  // A mean of click values (1 each) sums clicks: it would show a doubled click a proportion hides.
  await must('PUT the metric', ctx.admin('PUT', '/v1/metrics/clicks', { type: 'mean', event: 'click' }));
  await must('POST the experiment', ctx.admin('POST', '/v1/experiments', {
    key: EXPERIMENT,
    name: 'Chaos: v1 against v2',
    route: ROUTE,
    variants: [
      { key: 'control', weight: 50, params: { version: 'v1' } },
      { key: 'treatment', weight: 50, params: { version: 'v2' } },
    ],
    metrics: { primary: 'clicks', guardrails: ['error_rate', 'latency_ms'] },
  }));
  await must('start the experiment', ctx.admin('POST', `/v1/experiments/${EXPERIMENT}/start`));
  await waitFor('the gateway to assign the experiment', async () => {
    const res = await fetch(`${stack.gateway.url}/v1/assign`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ unitId: 'probe-setup', route: ROUTE, attributes: {}, track: false }),
    });
    return ((await res.json()) as { assignments: unknown[] }).assignments.length === 1;
  });
  await waitFor('the aggregator to know the experiment', async () => (await fetch(`${stack.aggregators[0]!.url}/v1/results/${EXPERIMENT}`, { headers: { authorization: `Bearer ${TOKEN}` } })).ok, 30_000);
}

async function runFault(stack: Stack, form: 'short' | 'full', fault: Fault): Promise<Ran> {
  const traffic = new Traffic({ gateway: () => stack.gateway.url, route: ROUTE, prefix: `${UNIT_PREFIX}${fault.name}`, ratePerSecond: RATE });
  const ctx = makeContext(stack, form, traffic, RATE, print);
  print(`== ${fault.name}`);
  const t0 = Date.now();
  traffic.start();
  let recoveryMs: number | null = null;
  let error: string | undefined;
  try {
    await ctx.sleep(3_000);
    recoveryMs = await fault.run(ctx);
    ctx.note(recoveryMs === null ? `did not recover (${ctx.last})` : `recovered ${(recoveryMs / 1000).toFixed(2)} s after the heal`);
    await ctx.sleep(2_000);
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
    ctx.check('the fault ran to its end', false, error);
  }
  await traffic.stop();
  const drained = await ctx.until(() => caughtUp(ctx, 0), 60_000);
  ctx.check('every event drained into the store', drained !== null, drained === null ? `after 60 s: ${ctx.last}` : `${(drained / 1000).toFixed(1)} s after the traffic stopped`);
  ctx.note(`took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return { fault, traffic, recoveryMs, checks: ctx.checks, ...(error ? { error } : {}) };
}

interface Row {
  name: string;
  sent: number;
  ok2xx: number;
  err5xx: number;
  noAnswer: number;
  other: number;
  accepted: number;
  counted: number;
  lost: number;
  doubled: number;
  recoveryMs: number | null;
  failures: string[];
}

/** Every accepted event, one by one: an exposure per answered request, a click per accepted click. */
function judge(ran: Ran, stored: StoredEvent[]): Row {
  const { traffic, fault } = ran;
  const prefix = `${UNIT_PREFIX}${fault.name}-`;
  const mine = stored.filter((e) => e.unitId.startsWith(prefix));
  const exposures = new Map<string, StoredEvent[]>();
  const clicks = new Map<string, number>();
  for (const e of mine) {
    if (e.type === 'exposure') exposures.set(e.requestId, [...(exposures.get(e.requestId) ?? []), e]);
    else if (e.type === 'click') clicks.set(e.eventId, (clicks.get(e.eventId) ?? 0) + 1);
  }
  let accepted = 0;
  let counted = 0;
  let lost = 0;
  let doubled = 0;
  for (const r of traffic.requests) {
    const n = exposures.get(r.requestId)?.length ?? 0;
    exposures.delete(r.requestId);
    if (r.exposed) {
      accepted++;
      if (n > 0) counted++;
      else lost++;
    }
    if (n > 1) doubled += n - 1;
  }
  const sentClicks = new Set<string>();
  for (const c of traffic.clicks) {
    sentClicks.add(c.eventId);
    const n = clicks.get(c.eventId) ?? 0;
    if (c.accepted) {
      accepted++;
      if (n > 0) counted++;
      else lost++;
    }
    if (n > 1) doubled += n - 1;
  }
  // Events of our units that no request or click of ours made are copies made on the way.
  for (const list of exposures.values()) doubled += list.length;
  for (const [id, n] of clicks) if (!sentClicks.has(id)) doubled += n;

  const answered = traffic.requests.filter((r) => r.status !== null);
  const failures: string[] = ran.checks.filter((c) => !c.ok).map((c) => c.name);
  const err5xx = answered.filter((r) => r.status! >= 500).length;
  const other = answered.filter((r) => r.status! < 200 || (r.status! >= 300 && r.status! < 500)).length;
  const noAnswer = traffic.requests.length - answered.length;
  if (err5xx > 0) failures.push(`${err5xx} answers were 5xx`);
  if (other > 0) failures.push(`${other} answers were neither 2xx nor 5xx`);
  if (noAnswer > 0 && !fault.gatewayDown) failures.push(`${noAnswer} requests got no answer`);
  if (lost > 0) failures.push(`lost ${lost}`);
  if (doubled > 0) failures.push(`doubled ${doubled}`);
  if (ran.recoveryMs === null) failures.push('no recovery');
  // A fallback hides a failure from the client, never from error_rate.
  const byRequest = new Map(mine.filter((e) => e.type === 'exposure').map((e) => [e.requestId, e]));
  const hidden = traffic.requests.filter((r) => r.fallback && (byRequest.get(r.requestId)?.status ?? 500) < 500).length;
  if (hidden > 0) failures.push(`${hidden} fallback answers logged without a failure status`);
  return {
    name: fault.name,
    sent: traffic.requests.length,
    ok2xx: answered.filter((r) => r.status! >= 200 && r.status! < 300).length,
    err5xx,
    noAnswer,
    other,
    accepted,
    counted,
    lost,
    doubled,
    recoveryMs: ran.recoveryMs,
    failures,
  };
}

function table(rows: Row[]): string {
  const head = ['fault', 'sent', '2xx', '5xx', 'no answer', 'accepted', 'counted', 'lost', 'doubled', 'recovery', 'result'];
  const body = rows.map((r) => [
    r.name,
    String(r.sent),
    String(r.ok2xx),
    String(r.err5xx),
    String(r.noAnswer),
    String(r.accepted),
    String(r.counted),
    `lost ${r.lost}`,
    `doubled ${r.doubled}`,
    r.recoveryMs === null ? '-' : `${(r.recoveryMs / 1000).toFixed(2)} s`,
    r.failures.length === 0 ? 'passed' : 'FAILED',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { short: { type: 'boolean', default: false }, only: { type: 'string' }, keep: { type: 'boolean', default: false } } });
  const form = values.short ? 'short' : 'full';
  const only = values.only?.split(',');
  const faults = FAULTS.filter((f) => (only ? only.includes(f.name) : form === 'full' || f.short));
  if (faults.length === 0) throw new Error(`no fault named ${values.only}; faults: ${FAULTS.map((f) => f.name).join(', ')}`);
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'bunryu-chaos-'));
  // The demo models are trained once and kept between runs.
  const modelDir = join(root, 'chaos', '.models');
  mkdirSync(modelDir, { recursive: true });
  print(`chaos (${form} form): ${faults.map((f) => f.name).join(', ')}`);
  const stack = await startStack(dir, modelDir);
  print(`stack up in ${((Date.now() - started) / 1000).toFixed(0)} s: Redis ${stack.redis.url}, Kafka ${stack.kafka.brokers}, gateway ${stack.gateway.url}`);
  const ran: Ran[] = [];
  try {
    await setUp(stack, makeContext(stack, form, new Traffic({ gateway: () => stack.gateway.url, route: ROUTE, prefix: 'setup', ratePerSecond: 1 }), RATE, print));
    for (const fault of faults) ran.push(await runFault(stack, form, fault));

    // chdb binds its directory to one process: the aggregators stop before their stores are read.
    for (const a of stack.aggregators) await a.stop();
    const stored = union(await Promise.all(stack.aggregators.map((a) => readStore(a.env.BUNRYU_DATA_DIR!, UNIT_PREFIX))));
    const rows = ran.map((r) => judge(r, stored));
    print('');
    print(table(rows));
    for (const r of rows) if (r.failures.length > 0) print(`${r.name}: ${r.failures.join('; ')}`);
    const failed = rows.filter((r) => r.failures.length > 0).length;
    print(`chaos (${form} form) took ${((Date.now() - started) / 1000).toFixed(0)} s`);
    print(`faults: ${rows.length - failed} passed, ${failed} failed`);
    return failed > 0 ? 1 : 0;
  } finally {
    await stack.close().catch((err) => print(`closing the stack: ${String(err)}`));
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    print(String(err instanceof Error ? (err.stack ?? err.message) : err));
    print('faults: 0 passed, 1 failed');
    process.exit(1);
  },
);
