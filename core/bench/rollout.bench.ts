/**
 * Issue #17 / SPEC §15: the release autopilot's decision function in seeded simulations (core
 * only, no servers). Each run sends units through the default plan (5% → 25% → 50%) and calls
 * decideRollout every 5 s of simulated time on the cumulative sufficient statistics. Counts, not
 * timings: the figures are the same on every machine for the same seeds.
 */
import { defaultRolloutPlan, RolloutPlan } from '@bunryu/core';
import type { BenchResult } from '../../bench/lib/result.ts';
import { peekGuardrails, sfc32, simulateRollout, type Arm, type Outcome, type World } from './rollout-simulation.ts';

const RUNS = 1000;
/** A busy route: at the 5% step the treatment sees about 50 new units a minute. */
const UNITS_PER_MINUTE = 1000;
/** Long enough for the default plan's 100 minutes and its unit minimums at this traffic. */
const HORIZON_MINUTES = 300;
const LOW_TRAFFIC_HORIZON_MINUTES = 12 * 60;

const CONTROL: Arm = { errorRate: 0.01, latencyLogMedian: Math.log(100), latencySigma: 0.5 };

function runs(world: World, seedBase: number, horizon = HORIZON_MINUTES): Outcome[] {
  const plan = defaultRolloutPlan(['control', 'treatment']);
  return Array.from({ length: RUNS }, (_, i) => simulateRollout(plan, world, sfc32(seedBase + i), horizon));
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const share = (outcomes: readonly Outcome[], pick: (o: Outcome) => boolean) => outcomes.filter(pick).length / outcomes.length;
const harm = (o: Outcome) => o.reason === 'harm';

export async function run(): Promise<BenchResult[]> {
  const alpha = defaultRolloutPlan(['control', 'treatment']).alpha;
  const results: BenchResult[] = [];
  const push = (metric: string, value: number, unit: string, target?: string, note?: string) =>
    results.push({ scenario: 'rollout', metric, value, unit, ...(target ? { target } : {}), ...(note ? { note } : {}) });

  // A/A over the full plan at the busy route's traffic.
  const aa = runs({ unitsPerMinute: UNITS_PER_MINUTE, control: CONTROL, treatment: CONTROL }, 1_000_000);
  push('A/A false rollbacks over the full plan', share(aa, harm), 'share of runs', `<= ${alpha}`);
  push('A/A pauses on SRM (p < 0.001 looked at every 5 s)', share(aa, (o) => o.reason === 'srm'), 'share of runs');
  push('A/A runs through every step', share(aa, (o) => o.reason.startsWith('done-')), 'share of runs');
  push('A/A median minutes to the end of the plan', median(aa.filter((o) => o.reason.startsWith('done-')).map((o) => o.minutes)), 'min');

  // +2 percentage points of errors.
  const errors = runs({ unitsPerMinute: UNITS_PER_MINUTE, control: CONTROL, treatment: { ...CONTROL, errorRate: CONTROL.errorRate + 0.02 } }, 2_000_000);
  const errorHits = errors.filter(harm);
  push('+2 pp error rate: detected', errorHits.length / errors.length, 'share of runs', '>= 0.95');
  push('+2 pp error rate: median time to detect', median(errorHits.map((o) => o.minutes)), 'min');
  push('+2 pp error rate: median treatment units at detection', median(errorHits.map((o) => o.treatmentUnits)), 'units');

  // +50% latency (the lognormal's median and mean both × 1.5).
  const slow = runs({ unitsPerMinute: UNITS_PER_MINUTE, control: CONTROL, treatment: { ...CONTROL, latencyLogMedian: CONTROL.latencyLogMedian + Math.log(1.5) } }, 3_000_000);
  const slowHits = slow.filter(harm);
  push('+50% latency: detected', slowHits.length / slow.length, 'share of runs', '>= 0.95');
  push('+50% latency: median time to detect', median(slowHits.map((o) => o.minutes)), 'min');
  push('+50% latency: median treatment units at detection', median(slowHits.map((o) => o.treatmentUnits)), 'units');

  // Low traffic holds, it never aborts.
  const quiet = runs({ unitsPerMinute: 2, control: CONTROL, treatment: CONTROL }, 4_000_000, LOW_TRAFFIC_HORIZON_MINUTES);
  push(`2 units/min for ${LOW_TRAFFIC_HORIZON_MINUTES / 60} h: rollbacks`, quiet.filter((o) => o.action === 'rollback').length, 'runs', '<= 0');
  push(`2 units/min for ${LOW_TRAFFIC_HORIZON_MINUTES / 60} h: any action`, quiet.filter((o) => o.action !== 'none').length, 'runs');

  // The bound's validity at the edge of the null: each guardrail's true difference is exactly its
  // margin (error rate equal, latency +5% with the default +5% relative margin), every guardrail
  // looked at every 5 s for an hour at 50/50, each at level alpha (the plan's alpha is k·alpha
  // so alpha / k is alpha), nothing acted on.
  const peekPlan = RolloutPlan.parse({ ...defaultRolloutPlan(['control', 'treatment']), alpha: alpha * 2 });
  const edge: World = { unitsPerMinute: UNITS_PER_MINUTE, control: CONTROL, treatment: { ...CONTROL, latencyLogMedian: CONTROL.latencyLogMedian + Math.log(1.05) } };
  const crossed = { error_rate: 0, latency_ms: 0 };
  for (let i = 0; i < RUNS; i++) {
    for (const m of peekGuardrails(peekPlan, edge, sfc32(5_000_000 + i), 0.5, 60)) crossed[m as keyof typeof crossed]++;
  }
  push(`peeking every 5 s for 1 h, error_rate +0: false harm (level ${alpha})`, crossed.error_rate / RUNS, 'share of runs', `<= ${alpha}`);
  push(`peeking every 5 s for 1 h, latency_ms +5%: false harm (level ${alpha})`, crossed.latency_ms / RUNS, 'share of runs', `<= ${alpha}`);
  return results;
}
