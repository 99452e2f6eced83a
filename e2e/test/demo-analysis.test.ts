/**
 * The demo's analyses on the real processes, as `npm run demo` runs them (one stack, the demo
 * seed; the shadowed v3 last, since it changes the demo route):
 * - returning users: each user's last two weeks sent first, then live visits through the gateway
 *   and the demo models; the A/B experiment's primary metric must show CUPED removing real
 *   variance (SPEC §11), since the users' lasting taste and activity drive both;
 * - interleaving (SPEC §13): visits to the ranked route get the merge of v1's and v2's rankings
 *   from the model-server, users click by the true click probability at each position, and the
 *   results must prefer v2, the better ranker;
 * - shadow (SPEC §13): v3 trained, registered and shadowing 10% of the demo route; the shadow
 *   figures show its pairs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { driveDemoTraffic } from '../../scripts/demo-traffic.ts';
import { driveInterleavingTraffic } from '../../scripts/demo-interleaving.ts';
import { seedDemoShadow } from '../../scripts/demo-shadow.ts';
import { DEMO_EXPERIMENT, DEMO_INTERLEAVING, seedDemo } from '../../scripts/seed-demo.ts';
import { startStack, waitFor, type Stack } from './support/stack.ts';

const modelDir = mkdtempSync(join(tmpdir(), 'bunryu-e2e-cuped-models-'));
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({}, modelDir);
  await seedDemo({ experimentServiceUrl: stack.url['experiment-service'], modelServerUrl: stack.url['model-server'], token: stack.token });
}, 240_000);
afterAll(async () => {
  await stack?.close();
  rmSync(modelDir, { recursive: true, force: true });
}, 120_000);

interface Results {
  variants: { key: string; units: number }[];
  metrics: { metric: string; comparisons: { pValue: number | null; raw?: { pValue: number | null }; cuped?: { theta: number | null; varianceReduction: number | null } }[] }[];
}

it('shows a real variance reduction on the demo\'s primary metric, from the users\' history', async () => {
  await waitFor('the gateway to assign the demo experiment', async () => {
    const res = await fetch(`${stack.url.gateway}/v1/assign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ unitId: 'probe', route: 'recommend', attributes: {}, track: false }) });
    return ((await res.json()) as { assignments: unknown[] }).assignments.length === 1;
  });
  const summary = await driveDemoTraffic({ gatewayUrl: stack.url.gateway, users: 1500, visits: 5000, concurrency: 8, historyDays: 14, seed: 5 });
  expect(summary.failures).toBe(0);
  expect(summary.historyEvents).toBeGreaterThan(1500);
  const get = async () => {
    const res = await fetch(`${stack.url.aggregator}/v1/results/${DEMO_EXPERIMENT}`, { headers: { authorization: `Bearer ${stack.token}` } });
    return (await res.json()) as Results;
  };
  // Every visit in: the units stop growing between two answers a couple of seconds apart.
  let previous = -1;
  const results = await waitFor(
    'the results to take in every visit',
    async () => {
      const r = await get();
      const units = r.variants.reduce((a, v) => a + v.units, 0);
      const settled = units > 0 && units === previous;
      previous = units;
      return settled && r;
    },
    60_000,
    2000,
  );
  const ctr = results.metrics.find((m) => m.metric === 'ctr')!.comparisons[0]!;
  expect(ctr.cuped?.varianceReduction).toBeGreaterThan(0.1);
  console.log(
    `demo CUPED on ctr: variance reduction ${(ctr.cuped!.varianceReduction! * 100).toFixed(1)}%, θ ${ctr.cuped!.theta?.toFixed(3)}, p ${ctr.raw?.pValue?.toPrecision(3)} raw → ${ctr.pValue?.toPrecision(3)} adjusted, ${previous} units, ${summary.historyEvents} history events`,
  );
}, 240_000);

it('prefers v2 in the demo\'s interleaving of v1 and v2, from clicks on the merged lists', async () => {
  await waitFor('the gateway to assign the interleaving experiment', async () => {
    const res = await fetch(`${stack.url.gateway}/v1/assign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ unitId: 'probe', route: 'rank', attributes: {}, track: false }) });
    return ((await res.json()) as { assignments: unknown[] }).assignments.length === 1;
  });
  const summary = await driveInterleavingTraffic({ gatewayUrl: stack.url.gateway, users: 300, visits: 1500, concurrency: 8, seed: 9 });
  expect(summary.failures).toBe(0);
  expect(summary.interleaved).toBe(summary.visits);
  interface Interleaving {
    requests: number;
    variants: { key: string; preferred: number }[];
    preference: number | null;
    pValue: number;
    sequentialPValue: number;
  }
  const il = await waitFor(
    'every interleaved request in the results',
    async () => {
      const res = await fetch(`${stack.url.aggregator}/v1/results/${DEMO_INTERLEAVING}`, { headers: { authorization: `Bearer ${stack.token}` } });
      const body = (await res.json()) as { interleaving?: Interleaving };
      return body.interleaving?.requests === summary.visits && body.interleaving;
    },
    60_000,
    1000,
  );
  const [v1, v2] = il.variants;
  expect(v2!.preferred).toBeGreaterThan(v1!.preferred);
  expect(il.sequentialPValue).toBeLessThan(0.05);
  console.log(`demo interleaving: ${il.requests} requests, ${v2!.preferred} units prefer v2, ${v1!.preferred} v1 (${((il.preference ?? 0) * 100).toFixed(1)}%), sign-test p ${il.pValue.toPrecision(3)}, sequential p ${il.sequentialPValue.toPrecision(3)}`);
}, 120_000);

it('shadows 10% of the demo route with v3 and reports the pairs', async () => {
  const services = { experimentServiceUrl: stack.url['experiment-service'], modelServerUrl: stack.url['model-server'], token: stack.token };
  await seedDemoShadow(services);
  await seedDemoShadow(services); // seeded once
  // Enough visits for about a hundred pairs.
  const before = await driveDemoTraffic({ gatewayUrl: stack.url.gateway, users: 500, visits: 1000, concurrency: 8, seed: 11 });
  expect(before.failures).toBe(0);
  interface Shadow { pairs: number; shadow: { errorRate: number | null }; latencyDiffMs: { diff: number | null }; agreement: { pairs: number; meanAbsDiff: number | null; rankCorrelation: number | null } }
  const figures = await waitFor(
    'the shadow pairs in the aggregator',
    async () => {
      const res = await fetch(`${stack.url.aggregator}/v1/shadow/recommend`, { headers: { authorization: `Bearer ${stack.token}` } });
      const body = (await res.json()) as Shadow;
      return body.pairs >= 50 && body;
    },
    60_000,
    1000,
  );
  // 10% of the requests after the shadow was seeded: far from none and far from all.
  expect(figures.pairs).toBeLessThan(300);
  // A copy can time out on a loaded machine (the route's 300 ms): then it has no output to compare.
  expect(figures.shadow.errorRate).toBeLessThan(0.1);
  expect(figures.agreement.pairs).toBeGreaterThan(0.9 * figures.pairs);
  expect(figures.agreement.pairs).toBeLessThanOrEqual(figures.pairs);
  // v3 scores the same candidates as v1 differently, but ranks them much alike.
  expect(figures.agreement.meanAbsDiff).toBeGreaterThan(0);
  expect(figures.agreement.rankCorrelation).toBeGreaterThan(0.3);
  console.log(`demo shadow: ${figures.pairs} pairs (${figures.agreement.pairs} with both outputs), shadow error rate ${figures.shadow.errorRate}, latency difference ${figures.latencyDiffMs.diff?.toFixed(2)} ms, mean abs. difference ${figures.agreement.meanAbsDiff?.toFixed(4)}, rank correlation ${figures.agreement.rankCorrelation?.toFixed(3)}`);
}, 180_000);
