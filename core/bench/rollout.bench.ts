/**
 * `npm run bench rollout`: the release autopilot's decision function in a seeded simulation
 * (SPEC §15), no servers. Each scenario runs the default plan (5% → 25% → 50%) over many seeds
 * and reports how often it ends in a rollback, and when.
 */
import { defaultRolloutPlan } from '@bunryu/core';
import type { BenchResult } from '../../bench/lib/result.ts';
import { simulateRollout, type Arm, type RunOutcome, type Scenario } from '../test/support/rollout-sim.ts';

const RUNS = Number(process.env.ROLLOUT_BENCH_RUNS ?? 1000);
const plan = defaultRolloutPlan(['control', 'treatment']);
const healthy: Arm = { errorRate: 0.01, latencyMedianMs: 50 };

function runMany(scenario: Scenario, seedBase: number): RunOutcome[] {
  const out: RunOutcome[] = [];
  for (let i = 0; i < RUNS; i++) out.push(simulateRollout(plan, scenario, seedBase + i));
  return out;
}

const share = (runs: RunOutcome[], end: RunOutcome['end']) => runs.filter((r) => r.end === end).length / runs.length;
function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const note = `${RUNS} seeded runs, default plan, α = ${plan.alpha}, decision every 5 s`;

  const aa = runMany({ unitsPerMinute: 100, control: healthy, treatment: healthy, horizonMinutes: 300 }, 1_000_000);
  results.push({ scenario: 'rollout', metric: 'A/A at 100 units/min: false rollbacks over the full plan', value: share(aa, 'rollback'), unit: 'share of runs', target: `<= ${plan.alpha}`, note });
  results.push({ scenario: 'rollout', metric: 'A/A at 100 units/min: any abort (rollback or pause)', value: share(aa, 'rollback') + share(aa, 'pause'), unit: 'share of runs', note });
  results.push({ scenario: 'rollout', metric: 'A/A at 100 units/min: plan completed', value: share(aa, 'completed'), unit: 'share of runs', note });
  results.push({ scenario: 'rollout', metric: 'A/A at 100 units/min: median time to complete the plan', value: median(aa.filter((r) => r.end === 'completed').map((r) => r.minutes)), unit: 'min', note });

  const errors = runMany({ unitsPerMinute: 100, control: healthy, treatment: { ...healthy, errorRate: healthy.errorRate + 0.02 }, horizonMinutes: 300 }, 2_000_000);
  const caught = errors.filter((r) => r.end === 'rollback');
  results.push({ scenario: 'rollout', metric: 'error rate +2 pp (1% → 3%) at 100 units/min: detected (rolled back)', value: caught.length / errors.length, unit: 'share of runs', target: '>= 0.95', note });
  results.push({ scenario: 'rollout', metric: 'error rate +2 pp: median time to rollback', value: median(caught.map((r) => r.minutes)), unit: 'min', note });
  results.push({ scenario: 'rollout', metric: 'error rate +2 pp: median treatment units at rollback', value: median(caught.map((r) => r.treatmentUnits)), unit: 'units', note });

  const failing = runMany({ unitsPerMinute: 6000, control: healthy, treatment: { ...healthy, errorRate: 0.2 }, horizonMinutes: 60 }, 3_000_000);
  const failingCaught = failing.filter((r) => r.end === 'rollback');
  results.push({ scenario: 'rollout', metric: '20% of requests failing at 100 req/s: detected', value: failingCaught.length / failing.length, unit: 'share of runs', target: '>= 0.95', note });
  results.push({ scenario: 'rollout', metric: '20% failing at 100 req/s: median decision time after the first bad answer', value: median(failingCaught.map((r) => r.minutes * 60)), unit: 's', note: `${note}; the time the decision takes once results show it (SPEC §15's 30 s includes the pipeline: npm run bench e2e)` });
  results.push({ scenario: 'rollout', metric: '20% failing at 100 req/s: median treatment units exposed at rollback', value: median(failingCaught.map((r) => r.treatmentUnits)), unit: 'units', target: '<= 300', note });

  const slow = runMany({ unitsPerMinute: 100, control: healthy, treatment: { ...healthy, latencyMedianMs: healthy.latencyMedianMs * 1.5 }, horizonMinutes: 300 }, 4_000_000);
  const slowCaught = slow.filter((r) => r.end === 'rollback');
  results.push({ scenario: 'rollout', metric: 'latency +50% at 100 units/min: detected (rolled back)', value: slowCaught.length / slow.length, unit: 'share of runs', target: '>= 0.95', note });
  results.push({ scenario: 'rollout', metric: 'latency +50%: median time to rollback', value: median(slowCaught.map((r) => r.minutes)), unit: 'min', note });

  const trickle = runMany({ unitsPerMinute: 2, control: healthy, treatment: healthy, horizonMinutes: 12 * 60 }, 5_000_000);
  results.push({ scenario: 'rollout', metric: 'A/A at 2 units/min over 12 h: rollbacks', value: trickle.filter((r) => r.end === 'rollback').length, unit: 'runs', target: '<= 0', note });
  return results;
}
