import { describe, expect, it } from 'vitest';
import { RolloutPlan, defaultRolloutPlan } from '../src/index.ts';
import { peekGuardrails, sfc32, type Arm } from '../bench/rollout-simulation.ts';

/**
 * The guardrail bound is always valid: looked at every 5 s of simulated traffic, it crosses a
 * margin the true difference sits exactly on in at most `level` of the runs (SPEC §10). A small
 * seeded version of the bench's check (`npm run bench rollout` runs 1,000 runs an hour long).
 */
const RUNS = 200;
const LEVEL = 0.1;
const CONTROL: Arm = { errorRate: 0.02, latencyLogMedian: Math.log(100), latencySigma: 0.6 };
// alpha = k · LEVEL so that each of the two guardrails is tested at LEVEL.
const PLAN = RolloutPlan.parse({ ...defaultRolloutPlan(['control', 'treatment']), alpha: 2 * LEVEL, minUnitsForDecision: 100 });

function falseHarm(treatment: Arm, share: number): Record<string, number> {
  const counts: Record<string, number> = { error_rate: 0, latency_ms: 0 };
  for (let i = 0; i < RUNS; i++) {
    for (const m of peekGuardrails(PLAN, { unitsPerMinute: 600, control: CONTROL, treatment }, sfc32(7_000 + i), share, 20)) counts[m]!++;
  }
  return { error_rate: counts.error_rate! / RUNS, latency_ms: counts.latency_ms! / RUNS };
}

describe('the guardrail bound under continuous peeking (seeded simulation)', () => {
  it('finds harm in at most `level` of the runs when the truth is on the margin', () => {
    // error_rate: equal rates against margin 0; latency_ms: +5% against the relative margin 5%.
    const edge = falseHarm({ ...CONTROL, latencyLogMedian: CONTROL.latencyLogMedian + Math.log(1.05) }, 0.1);
    expect(edge.error_rate).toBeLessThanOrEqual(LEVEL);
    expect(edge.latency_ms).toBeLessThanOrEqual(LEVEL);
  });

  it('finds a real harm in most runs (the check above is not passing by never looking)', () => {
    const harmed = falseHarm({ ...CONTROL, errorRate: CONTROL.errorRate + 0.05, latencyLogMedian: CONTROL.latencyLogMedian + Math.log(1.5) }, 0.1);
    expect(harmed.error_rate).toBeGreaterThanOrEqual(0.9);
    expect(harmed.latency_ms).toBeGreaterThanOrEqual(0.9);
  });
});
