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
