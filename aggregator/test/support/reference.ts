/**
 * An independent, plain-JavaScript reading of SPEC §4–§5 over raw events, for tests to check
 * the store's SQL against: no ClickHouse, no shared code with src/ beyond the types.
 */
import type { Event } from '@bunryu/core';
import type { MetricAggregate, MetricSpec } from '../../src/metrics-store/metrics-store.ts';

export interface ReferenceVariant {
  variant: string;
  phase: number;
  units: number;
  /** Units a ramp moved to another variant after their phase (kept, with their data before it). */
  moved: number;
  exposures: number;
  metrics: MetricAggregate[];
}

interface Unit {
  t0: number;
  firstId: string;
  variant: string;
  variants: Set<string>;
  exposures: Event[];
  phase: number;
  /** Data at or after this time does not count (the next phase's start). */
  cut: number;
  moved: boolean;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

function variance(xs: number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1);
}

function covariance(xs: number[], ys: number[]): number {
  if (xs.length < 2) return NaN;
  const mx = mean(xs);
  const my = mean(ys);
  return xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0) / (xs.length - 1);
}

/**
 * Per-variant figures of `experiment` counting data before `end` (Infinity: everything), keyed by
 * variant. With `phaseStarts` (ADR 0009) they are per phase and variant, keyed `phase:variant`:
 * a unit is in the phase of its first exposure, with its data before the next phase starts; a
 * unit first seen in another variant only after that is kept (moved), one seen in two variants
 * within its phase is left out, as is one first exposed within `settleMs` after a phase start.
 */
export function reference(
  events: readonly Event[],
  experiment: string,
  metrics: readonly MetricSpec[],
  end = Infinity,
  phaseStarts?: readonly number[],
  /** CUPED's pre-exposure window (ms): proportion and mean metrics then carry their covariate sums. */
  preWindowMs?: number,
  settleMs = 0,
): Map<string, ReferenceVariant> {
  const seen = new Set<string>();
  const unique = events.filter((e) => (seen.has(e.eventId) ? false : (seen.add(e.eventId), true)));

  const units = new Map<string, Unit>();
  for (const e of unique) {
    if (e.type !== 'exposure') continue;
    for (const a of e.assignments) {
      if (a.experiment !== experiment) continue;
      const u = units.get(e.unitId);
      if (!u) {
        units.set(e.unitId, { t0: e.ts, firstId: e.eventId, variant: a.variant, variants: new Set([a.variant]), exposures: [e], phase: 0, cut: Infinity, moved: false });
        continue;
      }
      u.variants.add(a.variant);
      u.exposures.push(e);
      if (e.ts < u.t0 || (e.ts === u.t0 && e.eventId < u.firstId)) {
        u.t0 = e.ts;
        u.firstId = e.eventId;
        u.variant = a.variant;
      }
    }
  }
  const byUnit = new Map<string, Event[]>();
  for (const e of unique) {
    const list = byUnit.get(e.unitId) ?? [];
    list.push(e);
    byUnit.set(e.unitId, list);
  }

  const groups = new Map<string, { unitId: string; u: Unit }[]>();
  for (const [unitId, u] of units) {
    if (!(u.t0 < end)) continue;
    if (phaseStarts) {
      u.phase = phaseStarts.filter((s) => s <= u.t0).length;
      u.cut = phaseStarts[u.phase] ?? Infinity;
      const elsewhere = u.exposures.filter((e) => e.assignments.some((a) => a.experiment === experiment && a.variant !== u.variant));
      if (elsewhere.some((e) => e.ts < u.cut)) continue;
      if (phaseStarts.some((s) => u.t0 >= s && u.t0 < s + settleMs)) continue;
      u.moved = elsewhere.length > 0;
    } else if (u.variants.size !== 1) continue;
    const key = phaseStarts ? `${u.phase}:${u.variant}` : u.variant;
    const g = groups.get(key) ?? [];
    g.push({ unitId, u });
    groups.set(key, g);
  }

  const out = new Map<string, ReferenceVariant>();
  for (const [key, members] of groups) {
    const { variant, phase } = members[0]!.u;
    const counted = (unitId: string, t0: number, type: string) => {
      const { cut } = units.get(unitId)!;
      return (byUnit.get(unitId) ?? []).filter((e) => e.type === type && e.ts >= t0 && e.ts < end && e.ts < cut);
    };
    const exposuresBefore = (u: Unit) => u.exposures.filter((e) => e.ts < end && e.ts < u.cut);
    const aggregates = metrics.map((m): MetricAggregate => {
      if (m.kind === 'latency_ms') {
        const xs: number[] = [];
        for (const { u } of members) {
          const lat = exposuresBefore(u).filter((e) => e.latencyMs !== undefined).map((e) => e.latencyMs!);
          if (lat.length) xs.push(mean(lat));
        }
        return { units: xs.length, count: xs.length, sum: xs.reduce((a, b) => a + b, 0), mean: mean(xs), variance: variance(xs) };
      }
      if (m.kind === 'ratio') {
        const val = (unitId: string, t0: number, r: { event: string; field?: 'value' }) => {
          const es = counted(unitId, t0, r.event);
          return r.field === 'value' ? es.reduce((a, e) => a + (e.value ?? 0), 0) : es.length;
        };
        const num = members.map(({ unitId, u }) => val(unitId, u.t0, m.numerator));
        const den = members.map(({ unitId, u }) => val(unitId, u.t0, m.denominator));
        const has = members.filter(({ unitId, u }) => counted(unitId, u.t0, m.numerator.event).length > 0).length;
        return {
          units: members.length,
          count: has,
          sum: num.reduce((a, b) => a + b, 0),
          mean: mean(num),
          variance: variance(num),
          denSum: den.reduce((a, b) => a + b, 0),
          denMean: mean(den),
          denVariance: variance(den),
          covariance: covariance(num, den),
        };
      }
      const xs: number[] = [];
      const covariates: number[] = [];
      let has = 0;
      for (const { unitId, u } of members) {
        if (m.kind === 'error_rate') {
          const x = exposuresBefore(u).some((e) => (e.status ?? 0) >= 500) ? 1 : 0;
          xs.push(x);
          has += x;
          continue;
        }
        const es = counted(unitId, u.t0, m.event);
        if (es.length > 0) has++;
        xs.push(m.kind === 'proportion' ? (es.length > 0 ? 1 : 0) : es.reduce((a, e) => a + (e.value ?? 0), 0));
        // CUPED's covariate: the same metric over the events in the window before the first exposure.
        const pre = (byUnit.get(unitId) ?? []).filter((e) => e.type === m.event && e.ts >= u.t0 - (preWindowMs ?? 0) && e.ts < u.t0);
        covariates.push(m.kind === 'proportion' ? (pre.length > 0 ? 1 : 0) : pre.reduce((a, e) => a + (e.value ?? 0), 0));
      }
      const a: MetricAggregate = { units: xs.length, count: has, sum: xs.reduce((a, b) => a + b, 0), mean: mean(xs), variance: variance(xs) };
      if (preWindowMs && m.kind !== 'error_rate') {
        a.covariate = {
          sumX: covariates.reduce((s, x) => s + x, 0),
          sumX2: covariates.reduce((s, x) => s + x * x, 0),
          sumXY: covariates.reduce((s, x, i) => s + x * xs[i]!, 0),
        };
      }
      return a;
    });
    out.set(key, {
      variant,
      phase,
      units: members.length,
      moved: members.filter(({ u }) => u.moved).length,
      exposures: members.reduce((a, { u }) => a + exposuresBefore(u).length, 0),
      metrics: aggregates,
    });
  }
  return out;
}

/** Relative 1e-9 (absolute 1e-9 near zero); NaN only equals NaN. */
export function near(a: number, b: number, rel = 1e-9): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  return Math.abs(a - b) <= Math.max(1e-9, rel * Math.abs(b));
}

/** One metric of every kind the store computes, as the store's tests ask for them. */
export const METRICS: MetricSpec[] = [
  { kind: 'proportion', event: 'click' },
  { kind: 'mean', event: 'dwell' },
  { kind: 'ratio', numerator: { event: 'click' }, denominator: { event: 'impression' } },
  { kind: 'ratio', numerator: { event: 'purchase', field: 'value' }, denominator: { event: 'exposure' } },
  { kind: 'error_rate' },
  { kind: 'latency_ms' },
];
