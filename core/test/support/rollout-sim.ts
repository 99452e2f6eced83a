/**
 * A seeded simulation of one guarded rollout (SPEC §10, §15): units arrive, are split by the
 * current step's weights, each has an error or not and a latency, and the decision function is
 * called every 5 s of simulated time on the cumulative per-variant figures the aggregator would
 * report. Used by the core tests (few runs) and the rollout bench (thousands).
 */
import { decideRollout, srm, type RolloutDecision, type RolloutPlan, type RolloutResults } from '../../src/index.ts';

export interface Arm {
  /** Share of units whose exposure failed (status ≥ 500). */
  errorRate: number;
  /** Median of the lognormal per-unit latency, ms. */
  latencyMedianMs: number;
}

export interface Scenario {
  unitsPerMinute: number;
  control: Arm;
  treatment: Arm;
  /** How long the rollout may run before the run counts as unfinished. */
  horizonMinutes: number;
  /** Spread of the lognormal latency (σ of its log). */
  latencySigma?: number;
  tickSeconds?: number;
}

export interface RunOutcome {
  /** What ended the run: an action, `completed` (every step done, holding), or `horizon`. */
  end: 'rollback' | 'pause' | 'promote' | 'completed' | 'horizon';
  reason: string;
  minutes: number;
  /** Units the treatment had when the run ended. */
  treatmentUnits: number;
  stepsDone: number;
}

/** Mulberry32: small, fast, and the same sequence on every machine. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function poisson(rng: () => number, mean: number): number {
  if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * gaussian(rng)));
  const limit = Math.exp(-mean);
  let k = 0;
  let p = rng();
  while (p > limit) {
    k++;
    p *= rng();
  }
  return k;
}

function gaussian(rng: () => number): number {
  const u = 1 - rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

interface Tally {
  units: number;
  errors: number;
  latencySum: number;
  latencySq: number;
  /** Units expected here from the weights each arrived under (the split the SRM check must use). */
  expected: number;
}

export function simulateRollout(plan: RolloutPlan, scenario: Scenario, seed: number): RunOutcome {
  const rng = createRng(seed);
  const tickMs = (scenario.tickSeconds ?? 5) * 1000;
  const sigma = scenario.latencySigma ?? 0.5;
  const keys = Object.keys(plan.steps[0]!.weights);
  const arms = keys.map((_, i) => (i === 0 ? scenario.control : scenario.treatment));
  const tallies: Tally[] = keys.map(() => ({ units: 0, errors: 0, latencySum: 0, latencySq: 0, expected: 0 }));
  const state = { step: 0, stepStartedAt: 0, lastTrafficAt: 0 };
  const horizonMs = scenario.horizonMinutes * 60_000;
  const perTick = (scenario.unitsPerMinute * tickMs) / 60_000;
  let lastTotal = 0;
  for (let now = tickMs; now <= horizonMs; now += tickMs) {
    const weights = keys.map((k) => plan.steps[state.step]!.weights[k]! / 100);
    const arrivals = poisson(rng, perTick);
    for (let i = 0; i < arrivals; i++) {
      let u = rng();
      let arm = 0;
      while (arm < keys.length - 1 && u >= weights[arm]!) u -= weights[arm++]!;
      const t = tallies[arm]!;
      t.units++;
      if (rng() < arms[arm]!.errorRate) t.errors++;
      const latency = arms[arm]!.latencyMedianMs * Math.exp(sigma * gaussian(rng));
      t.latencySum += latency;
      t.latencySq += latency * latency;
    }
    weights.forEach((w, i) => (tallies[i]!.expected += arrivals * w));
    const total = tallies.reduce((s, t) => s + t.units, 0);
    if (total > lastTotal) state.lastTrafficAt = now;
    lastTotal = total;
    const decision = decideRollout(plan, resultsOf(keys, tallies), state, now);
    const outcome = apply(decision, state, now, plan);
    if (outcome) return { end: outcome, reason: decision.reason, minutes: now / 60_000, treatmentUnits: tallies[1]!.units, stepsDone: state.step };
  }
  return { end: 'horizon', reason: 'horizon', minutes: scenario.horizonMinutes, treatmentUnits: tallies[1]!.units, stepsDone: state.step };
}

function apply(decision: RolloutDecision, state: { step: number; stepStartedAt: number }, now: number, plan: RolloutPlan): RunOutcome['end'] | null {
  switch (decision.action) {
    case 'ramp':
      state.step = decision.toStep!;
      state.stepStartedAt = now;
      return null;
    case 'rollback':
    case 'pause':
    case 'promote':
      return decision.action;
    case 'hold':
      return decision.reason.startsWith('done') && state.step === plan.steps.length - 1 ? 'completed' : null;
  }
}

/** The figures GET /v1/results/:experiment would give for these tallies (SPEC §4; variance conventions of aggregator/src/results/analysis.ts). */
export function resultsOf(keys: readonly string[], tallies: readonly Tally[]): RolloutResults {
  const check = srm(
    tallies.map((t) => t.units),
    tallies.map((t) => Math.max(t.expected, 1e-9)),
  );
  return {
    variants: keys.map((key, i) => ({ key, units: tallies[i]!.units })),
    srm: { pValue: check.pValue, mismatch: check.mismatch },
    metrics: [
      {
        metric: 'error_rate',
        type: 'proportion',
        variants: keys.map((key, i) => {
          const t = tallies[i]!;
          const p = t.units > 0 ? t.errors / t.units : 0;
          return { key, units: t.units, mean: p, variance: p * (1 - p) };
        }),
        comparisons: [],
      },
      {
        metric: 'latency_ms',
        type: 'mean',
        variants: keys.map((key, i) => {
          const t = tallies[i]!;
          const mean = t.units > 0 ? t.latencySum / t.units : 0;
          const variance = t.units > 1 ? (t.latencySq - t.units * mean * mean) / (t.units - 1) : 0;
          return { key, units: t.units, mean, variance: Math.max(0, variance) };
        }),
        comparisons: [],
      },
    ],
  };
}
