import { randomUUID } from 'node:crypto';
import type { Event } from '@bunryu/core';

/** A seeded generator (mulberry32): test data must be the same on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function exposure(unitId: string, ts: number, assignments: { experiment: string; variant: string }[], extra: Partial<Event> = {}): Event {
  return { eventId: randomUUID(), type: 'exposure', ts, unitId, route: 'recommend', requestId: randomUUID(), assignments, ...extra };
}

export function behaviour(type: string, unitId: string, ts: number, extra: Partial<Event> = {}): Event {
  return { eventId: randomUUID(), type, ts, unitId, route: 'recommend', assignments: [], ...extra };
}

export interface Dataset {
  events: Event[];
}

/**
 * A realistic small experiment: units exposed once or several times, clicks, impressions and
 * dwell with values, some events before the first exposure (they must not count), some units in
 * two variants (left out), errors and latencies on exposures. `treatmentLift` raises the click
 * probability of the second variant.
 */
export function experimentData(opts: {
  experiment: string;
  variants: string[];
  units: number;
  seed: number;
  start: number;
  spanMs: number;
  prefix?: string;
  treatmentLift?: number;
}): Event[] {
  const r = rng(opts.seed);
  const events: Event[] = [];
  const prefix = opts.prefix ?? opts.experiment;
  for (let i = 0; i < opts.units; i++) {
    const unitId = `${prefix}-u${i}`;
    const v = Math.floor(r() * opts.variants.length);
    const variant = opts.variants[v]!;
    const t0 = opts.start + Math.floor(r() * opts.spanMs);
    const nExposures = 1 + Math.floor(r() * 3);
    for (let k = 0; k < nExposures; k++) {
      const extra: Partial<Event> = { status: r() < 0.05 ? 503 : 200 };
      if (r() < 0.9) extra.latencyMs = 2 + r() * 20 + v;
      events.push(exposure(unitId, t0 + k * Math.floor(r() * 60_000), [{ experiment: opts.experiment, variant }], extra));
    }
    // A few units also show up in another variant: they cannot be attributed.
    if (r() < 0.02) events.push(exposure(unitId, t0 + 5000, [{ experiment: opts.experiment, variant: opts.variants[(v + 1) % opts.variants.length]! }]));
    // Behaviour before the first exposure: must be ignored.
    if (r() < 0.3) events.push(behaviour('click', unitId, t0 - 1 - Math.floor(r() * 10_000)));
    const pClick = 0.2 + (v > 0 ? (opts.treatmentLift ?? 0) : 0);
    const impressions = Math.floor(r() * 6);
    for (let k = 0; k < impressions; k++) {
      const ts = t0 + Math.floor(r() * opts.spanMs);
      events.push(behaviour('impression', unitId, ts));
      if (r() < pClick) events.push(behaviour('click', unitId, ts + 100, { value: 1 }));
    }
    if (r() < 0.6) events.push(behaviour('dwell', unitId, t0 + Math.floor(r() * opts.spanMs), { value: Math.round(r() * 300) / 10 }));
    if (r() < 0.1) events.push(behaviour('purchase', unitId, t0 + Math.floor(r() * opts.spanMs), { value: 5 + Math.round(r() * 5000) / 100 }));
  }
  return events;
}

/**
 * A ramped two-variant experiment (control, treatment): phase p runs from `phaseStarts[p - 1]`
 * (or `start`) with `weights[p]`, and each unit's variant at any time follows its fixed bucket
 * under the weights then in effect, as the gateway assigns (SPEC §3: ranges in variant order, so
 * a ramp towards treatment moves control's top buckets). Units come back across phases, so a ramp
 * moves some of them; a few are seen in both variants within one phase (a gateway on the old
 * weights for a moment) and cannot be attributed. Clicks, dwell, errors and latencies as in
 * `experimentData`. With `lag`, the gateway assigns on each phase's weights only that long after
 * the phase starts.
 */
export function rampedData(opts: {
  experiment: string;
  units: number;
  seed: number;
  start: number;
  phaseStarts: number[];
  weights: [number, number][];
  /** Click probability by phase (a trend over time), the same in both variants unless `lift`. */
  pClick?: number[];
  lift?: number;
  /**
   * Each unit also clicks and dwells at random times up to this long before its first exposure,
   * more often the more active it is; active units also click more during the experiment.
   */
  preHistory?: number;
  lag?: number;
}): Event[] {
  const r = rng(opts.seed);
  const events: Event[] = [];
  const end = opts.phaseStarts.at(-1)! + (opts.phaseStarts.at(-1)! - opts.start) / opts.phaseStarts.length;
  const phaseAt = (t: number) => opts.phaseStarts.filter((s) => s <= t).length;
  const variantAt = (bucket: number, t: number) => (bucket < opts.weights[phaseAt(t - (opts.lag ?? 0))]![0] ? 'control' : 'treatment');
  for (let i = 0; i < opts.units; i++) {
    const unitId = `${opts.experiment}-u${i}`;
    const bucket = r() * 100;
    let t = opts.start + Math.floor(r() * (end - opts.start));
    const assign = (at: number) => [{ experiment: opts.experiment, variant: variantAt(bucket, at) }];
    // How active the user is: more behaviour before the experiment and more clicks in it (what CUPED uses).
    const activity = opts.preHistory ? r() : 0;
    if (opts.preHistory) {
      for (let j = Math.floor(activity * activity * 6); j > 0; j--) {
        const ts = t - 1 - Math.floor(r() * opts.preHistory);
        events.push(behaviour(r() < 0.7 ? 'click' : 'dwell', unitId, ts, { value: Math.round(r() * 300) / 10 }));
      }
    }
    const visits = 1 + Math.floor(r() * 4);
    for (let k = 0; k < visits && t < end; k++) {
      const variant = variantAt(bucket, t);
      const extra: Partial<Event> = { status: r() < 0.05 ? 503 : 200 };
      if (r() < 0.9) extra.latencyMs = 2 + r() * 20;
      events.push(exposure(unitId, t, assign(t), extra));
      if (k === 0 && r() < 0.01) events.push(exposure(unitId, t + 1000, [{ experiment: opts.experiment, variant: variant === 'control' ? 'treatment' : 'control' }]));
      const p = (opts.pClick?.[phaseAt(t)] ?? 0.2) * (opts.preHistory ? activity * activity * 2 : 1) + (variant === 'treatment' ? (opts.lift ?? 0) : 0);
      const impressions = Math.floor(r() * 4);
      for (let j = 0; j < impressions; j++) {
        events.push(behaviour('impression', unitId, t + 500 + j));
        if (r() < p) events.push(behaviour('click', unitId, t + 600 + j, { value: 1 }));
      }
      if (r() < 0.5) events.push(behaviour('dwell', unitId, t + 2000, { value: Math.round(r() * 300) / 10 }));
      if (r() < 0.1) events.push(behaviour('purchase', unitId, t + 3000, { value: 5 + Math.round(r() * 5000) / 100 }));
      t += Math.floor(r() * (end - opts.start) / 2);
    }
  }
  return events;
}
