/**
 * Issue #2 / SPEC §7: hashing as the core does it against the murmurhash string API, and the
 * cost of assigning one unit against 20 running experiments as a share of a bare
 * @fastify/http-proxy request measured in the same run.
 */
import murmurhash from 'murmurhash';
import { PrefixHasher, assign, assignForwarding, hashPrefix, type AssignableConfig, type AssignableExperiment } from '@bunryu/core';
import { startChild } from '../../bench/lib/child.ts';
import { load } from '../../bench/lib/load.ts';
import type { BenchResult } from '../../bench/lib/result.ts';

const EXPERIMENTS = 20;

/** Each experiment alone in its layer (every unit assigned to all 20), or five to a layer, 2,000 buckets each. */
function twentyExperiments(shared = false): AssignableConfig {
  const experiments: AssignableExperiment[] = Array.from({ length: EXPERIMENTS }, (_, i) => ({
    key: `exp-${String(i).padStart(2, '0')}`,
    route: 'recommend',
    layer: shared ? `layer-${i % 4}` : `layer-${i}`,
    salt: 's',
    status: 'running',
    allocation: shared ? { start: Math.floor(i / 4) * 2000, end: Math.floor(i / 4) * 2000 + 2000 } : { start: 0, end: 10_000 },
    targeting: [{ attribute: 'country', op: 'in', value: ['JP', 'US'] }],
    variants: [
      { key: 'control', weight: 50, params: { [`p${i}`]: 'a' } },
      { key: 'treatment', weight: 50, params: { [`p${i}`]: 'b' } },
    ],
    overrides: { 'qa-user': 'treatment' },
  }));
  return { routes: { recommend: { defaultParams: { model: 'recommend', version: 'v1' } } }, experiments };
}

function timeIt(fn: () => void, minMs = 1000): number {
  fn(); // warm up
  let iterations = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs) {
    fn();
    iterations++;
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return elapsed / iterations; // ms per call
}

export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];

  // Hashing: N units × 20 experiments, the string API vs the core (unit written once, prefixes pre-hashed).
  const units = Array.from({ length: 20_000 }, (_, i) => `user-${i * 7919}`);
  const prefixes = Array.from({ length: EXPERIMENTS }, (_, i) => `exp-${i}:s:`);
  const prefixBytes = prefixes.map(hashPrefix);
  const hasher = new PrefixHasher();
  let checkA = 0;
  let checkB = 0;
  const stringMs = timeIt(() => {
    checkA = 0;
    for (const u of units) for (const p of prefixes) checkA = (checkA + murmurhash.v3(p + u, 0)) >>> 0;
  });
  const bytesMs = timeIt(() => {
    checkB = 0;
    for (const u of units) {
      hasher.setUnit(u);
      for (const p of prefixBytes) checkB = (checkB + hasher.hash(p)) >>> 0;
    }
  });
  if (checkA !== checkB) throw new Error(`hash mismatch: string API ${checkA} vs core ${checkB}`);
  const n = units.length * prefixes.length;
  const stringRate = n / (stringMs / 1000);
  const bytesRate = n / (bytesMs / 1000);
  results.push({ scenario: 'hash', metric: 'murmurhash string API', value: stringRate, unit: 'hashes/s' });
  results.push({ scenario: 'hash', metric: 'core PrefixHasher (identical results)', value: bytesRate, unit: 'hashes/s', baseline: stringRate, ratio: bytesRate / stringRate, target: '>= 10' });

  // assign() of one unit against 20 running experiments.
  const config = twentyExperiments();
  const attrs = { country: 'JP' };
  let i = 0;
  const assignMs = timeIt(() => {
    for (let k = 0; k < 1000; k++) assign(config, 'recommend', units[i++ % units.length]!, attrs);
  });
  const assignUs = assignMs; // 1000 calls per ms → µs per call
  const sample = assign(config, 'recommend', 'user-1', attrs);
  if (sample.assignments.length !== EXPERIMENTS) throw new Error('assign bench config does not assign all 20 experiments');
  results.push({ scenario: 'assign', metric: 'assign, 1 unit × 20 running experiments', value: assignUs, unit: 'µs/unit' });
  // What the gateway runs per request: the same assignment, with the params as the x-ab-params text.
  const forwardingUs = timeIt(() => {
    for (let k = 0; k < 1000; k++) assignForwarding(config, 'recommend', units[i++ % units.length]!, attrs);
  });
  results.push({ scenario: 'assign', metric: 'assignForwarding (params as header JSON), 20 experiments', value: forwardingUs, unit: 'µs/unit' });
  // Experiments that share layers need the layer hash too (an experiment alone in its layer skips it).
  const layered = twentyExperiments(true);
  const layeredUs = timeIt(() => {
    for (let k = 0; k < 1000; k++) assign(layered, 'recommend', units[i++ % units.length]!, attrs);
  });
  if (assign(layered, 'recommend', 'user-1', attrs).assignments.length !== 4) throw new Error('layered assign bench config does not assign one experiment per layer');
  results.push({ scenario: 'assign', metric: 'assign, 1 unit × 20 running experiments in 4 shared layers', value: layeredUs, unit: 'µs/unit' });

  const upstream = await startChild(new URL('../../bench/lib/upstream.ts', import.meta.url).pathname);
  const proxy = await startChild(new URL('../../bench/lib/bare-proxy.ts', import.meta.url).pathname, { UPSTREAM: upstream.url });
  try {
    await load({ url: `${proxy.url}/predict`, seconds: 1 }); // warm up
    const bare = await load({ url: `${proxy.url}/predict`, seconds: 5, connections: 50 });
    const budgetUs = 1e6 / bare.rps;
    results.push({ scenario: 'assign', metric: 'bare @fastify/http-proxy throughput', value: bare.rps, unit: 'req/s' });
    results.push({
      scenario: 'assign',
      metric: 'gateway assignment cost as share of a bare-proxy request',
      value: forwardingUs,
      unit: 'µs/unit',
      baseline: budgetUs,
      ratio: forwardingUs / budgetUs,
      target: '<= 0.05',
    });
  } finally {
    await proxy.stop();
    await upstream.stop();
  }
  return results;
}
