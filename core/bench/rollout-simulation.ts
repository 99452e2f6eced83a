/**
 * A seeded simulation of a guarded rollout (SPEC §10, §15): units arrive over simulated time, are
 * split by the current step's weights, and each gives an error (a Bernoulli draw) and a latency
 * (lognormal, skewed like real latencies). Every tick the decision function sees the cumulative
 * sufficient statistics as the aggregator would publish them, and its action is applied. No
 * servers, no clock: everything is a function of the seed.
 */
import { decideRollout, evaluateGuardrails, srm, type RolloutDecision, type RolloutPlan, type RolloutResults } from '@bunryu/core';

/** sfc32: a small, fast, seedable generator (PractRand-clean). */
export function sfc32(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = (): number => {
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 20; i++) next();
  return next;
}

/** Standard normal draws (Box–Muller), seeded through `rng`. */
export function normals(rng: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(1 - rng()));
    const t = 2 * Math.PI * rng();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
}

/** Poisson draws: by multiplication for small means, a rounded normal above (the tick counts only need the right mean and spread). */
function poisson(rng: () => number, normal: () => number, mean: number): number {
  if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * normal()));
  const limit = Math.exp(-mean);
  let k = 0;
  let p = rng();
  while (p > limit) {
    k++;
    p *= rng();
  }
  return k;
}

export interface Arm {
  /** Share of units with an error. */
  errorRate: number;
  /** Latency is lognormal: exp(N(logMedian, sigma²)). */
  latencyLogMedian: number;
  latencySigma: number;
}

export interface World {
  unitsPerMinute: number;
  control: Arm;
  treatment: Arm;
}

export interface Outcome {
  /** 'none' when the horizon ran out with nothing but holds. */
  action: RolloutDecision['action'] | 'none';
  reason: RolloutDecision['reason'] | 'horizon';
  minutes: number;
  /** Step index reached (ramps applied). */
  step: number;
  treatmentUnits: number;
}

interface Sums {
  units: number;
  errors: number;
  latencySum: number;
  latencySumSq: number;
}

const TICK_MS = 5_000;

function metricVariants(key: string, s: Sums) {
  const p = s.units > 0 ? s.errors / s.units : null;
  const mean = s.units > 0 ? s.latencySum / s.units : null;
  const variance = s.units > 1 && mean !== null ? Math.max(0, (s.latencySumSq - s.units * mean * mean) / (s.units - 1)) : null;
  return {
    error: { key, units: s.units, mean: p, variance: p === null ? null : p * (1 - p) },
    latency: { key, units: s.units, mean, variance },
  };
}

/** Units arriving tick by tick, split by the treatment's share, summed as the aggregator sums them. */
export class Traffic {
  readonly control: Sums = { units: 0, errors: 0, latencySum: 0, latencySumSq: 0 };
  readonly treatment: Sums = { units: 0, errors: 0, latencySum: 0, latencySumSq: 0 };
  /** Units exposed since `restartSrm`: the aggregator's SRM counts only units exposed under the current weights. */
  sinceWeights = [0, 0];
  private readonly normal: () => number;
  private readonly perTick: number;

  constructor(
    private readonly world: World,
    private readonly rng: () => number,
  ) {
    this.normal = normals(rng);
    this.perTick = (world.unitsPerMinute * TICK_MS) / 60_000;
  }

  /** One tick of arrivals; returns how many units arrived. */
  tick(treatmentShare: number): number {
    const arrivals = poisson(this.rng, this.normal, this.perTick);
    for (let i = 0; i < arrivals; i++) {
      const treated = this.rng() < treatmentShare;
      const arm = treated ? this.world.treatment : this.world.control;
      const s = treated ? this.treatment : this.control;
      s.units++;
      if (this.rng() < arm.errorRate) s.errors++;
      const latency = Math.exp(arm.latencyLogMedian + arm.latencySigma * this.normal());
      s.latencySum += latency;
      s.latencySumSq += latency * latency;
      this.sinceWeights[treated ? 1 : 0]!++;
    }
    return arrivals;
  }

  restartSrm(): void {
    this.sinceWeights = [0, 0];
  }

  results(weights: Record<string, number>): RolloutResults {
    const c = metricVariants('control', this.control);
    const t = metricVariants('treatment', this.treatment);
    const check = srm(this.sinceWeights, [weights['control'] ?? 0, weights['treatment'] ?? 0]);
    return {
      variants: [
        { key: 'control', units: this.control.units },
        { key: 'treatment', units: this.treatment.units },
      ],
      srm: { pValue: check.pValue, mismatch: check.mismatch },
      metrics: [
        { metric: 'error_rate', type: 'proportion', variants: [c.error, t.error], comparisons: [] },
        { metric: 'latency_ms', type: 'mean', variants: [c.latency, t.latency], comparisons: [] },
      ],
    };
  }
}

/**
 * Runs one rollout of `plan` (control = 'control', treatment = 'treatment') for at most
 * `horizonMinutes`, deciding every 5 s, until the decision function acts (anything but a hold or
 * a ramp) or holds for good after the last step.
 */
export function simulateRollout(plan: RolloutPlan, world: World, rng: () => number, horizonMinutes: number): Outcome {
  const traffic = new Traffic(world, rng);
  let step = 0;
  let stepStartedAt = 0;
  let lastTrafficAt = 0;
  for (let now = TICK_MS; now <= horizonMinutes * 60_000; now += TICK_MS) {
    const weights = plan.steps[step]!.weights;
    if (traffic.tick((weights['treatment'] ?? 0) / 100) > 0) lastTrafficAt = now;
    const d = decideRollout(plan, traffic.results(weights), { step, stepStartedAt, lastTrafficAt }, now);
    if (d.action === 'ramp') {
      step = d.toStep!;
      stepStartedAt = now;
      traffic.restartSrm();
      continue;
    }
    if (d.action !== 'hold' || d.reason.startsWith('done-')) {
      return { action: d.action, reason: d.reason, minutes: now / 60_000, step, treatmentUnits: traffic.treatment.units };
    }
  }
  return { action: 'none', reason: 'horizon', minutes: horizonMinutes, step, treatmentUnits: traffic.treatment.units };
}

/**
 * Continuous peeking: the guardrails of `plan` evaluated every 5 s for `minutes` at a fixed
 * treatment share, nothing acted on. Returns, per guardrail metric, whether any look found harm.
 */
export function peekGuardrails(plan: RolloutPlan, world: World, rng: () => number, treatmentShare: number, minutes: number): Set<string> {
  const traffic = new Traffic(world, rng);
  const harmed = new Set<string>();
  const weights = { control: 100 - treatmentShare * 100, treatment: treatmentShare * 100 };
  for (let now = TICK_MS; now <= minutes * 60_000; now += TICK_MS) {
    traffic.tick(treatmentShare);
    for (const g of evaluateGuardrails(plan, traffic.results(weights))) if (g.verdict === 'harmed') harmed.add(g.metric);
  }
  return harmed;
}
