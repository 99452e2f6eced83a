import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUILT_IN_METRICS,
  EVENTS_TOPIC,
  mixingVariance,
  proportionTest,
  ratioEstimate,
  ratioTest,
  sequentialPValue,
  adjustPValues,
  cupedTest,
  poststratify,
  sequentialSignPValue,
  signTest,
  srm,
  srmAcrossGroups,
  welchTest,
  type Comparison,
  type Event,
} from '@bunryu/core';
import { createFileEventLog, type EventLogProducer } from '@bunryu/event-log';
import { buildApp } from '../src/app.ts';
import { compose, type Deps } from '../src/compose.ts';
import { ConfigSchema, type Config } from '../src/config.ts';
import type { MetricAggregate, MetricSpec } from '../src/metrics-store/metrics-store.ts';
import type { ExperimentResults, MetricComparison } from '../src/results/analysis.ts';
import type { AsServedResults, ExperimentSlices, Timeseries } from '../src/results/results-service.ts';
import type { ShadowResults } from '../src/results/shadow.ts';
import { behaviour, experimentData, exposure, rampedData, rng } from './support/events.ts';
import { experiment, fakeExperimentService, snapshot, type FakeExperimentService } from './support/fake-experiment-service.ts';
import { near, reference, type ReferenceVariant } from './support/reference.ts';
import { waitFor } from './support/wait.ts';

/**
 * End to end (issue #6, "done when"): known exposures and events go into the event log as the
 * gateway writes them; the aggregator consumes them into chdb; GET /v1/results answers units,
 * means, lifts and p-values equal to values computed here, independently, from the same raw
 * events (plain JavaScript aggregation, then core's statistics).
 */
const TOKEN = 'viewer-token';
/** What the aggregator accepts for reading results (the experiment-service's tokens, in production). */
const RESULTS_TOKEN = 'results-viewer-token';
const KEY = 'ranker-v2';
const MIN_UNITS = 50;
const CATALOGUE: Record<string, unknown> = {
  ...BUILT_IN_METRICS,
  ctr: { key: 'ctr', type: 'proportion', event: 'click', builtIn: false },
  dwell_time: { key: 'dwell_time', type: 'mean', event: 'dwell', builtIn: false },
  clicks_per_impression: { key: 'clicks_per_impression', type: 'ratio', numerator: { event: 'click' }, denominator: { event: 'impression' }, builtIn: false },
  revenue_per_request: { key: 'revenue_per_request', type: 'ratio', numerator: { event: 'purchase', field: 'value' }, denominator: { event: 'exposure' }, builtIn: false },
};
/** The metrics as this test reads SPEC §5 for them (not taken from src). */
const SPECS: Record<string, { type: 'proportion' | 'mean' | 'ratio'; spec: MetricSpec }> = {
  ctr: { type: 'proportion', spec: { kind: 'proportion', event: 'click' } },
  dwell_time: { type: 'mean', spec: { kind: 'mean', event: 'dwell' } },
  clicks_per_impression: { type: 'ratio', spec: { kind: 'ratio', numerator: { event: 'click' }, denominator: { event: 'impression' } } },
  revenue_per_request: { type: 'ratio', spec: { kind: 'ratio', numerator: { event: 'purchase', field: 'value' }, denominator: { event: 'exposure' } } },
  error_rate: { type: 'proportion', spec: { kind: 'error_rate' } },
  latency_ms: { type: 'mean', spec: { kind: 'latency_ms' } },
};
const VARIANTS = [
  { key: 'control', weight: 40 },
  { key: 'treatment', weight: 40 },
  { key: 'wild', weight: 20 },
];

let dir: string;
let service: FakeExperimentService;
let config: Readonly<Config>;
let deps: Deps;
let app: FastifyInstance;
let base: string;
let producer: EventLogProducer;
let events: Event[];
/** Deliveries beyond `events` (a test redelivers a batch). */
let redelivered = 0;
const start = Date.UTC(2026, 10, 20, 9, 0, 0);
/** An experiment ramped from 50/50 to 30/70 an hour in: SRM must judge only the units exposed since. */
/** How long after a ramp first exposures are left out (`AGGREGATOR_PHASE_SETTLE_MS`). */
const SETTLE_MS = 60_000;
const RAMPED = 'ramped-exp';
const RAMPED_AT = start + 3_600_000;
const rampedExperiment = {
  ...experiment(RAMPED, [{ key: 'control', weight: 30 }, { key: 'treatment', weight: 70 }], { guardrails: [] }),
  weightsChangedAt: new Date(RAMPED_AT).toISOString(),
};
const rampedEvents = (): Event[] => {
  const out: Event[] = [];
  const add = (n: number, variant: string, ts: number) => {
    for (let i = 0; i < n; i++) out.push(exposure(`r-${variant}-${ts}-${i}`, ts + i, [{ experiment: RAMPED, variant }]));
  };
  add(100, 'control', start); // before the ramp: 50/50
  add(100, 'treatment', start);
  // While the ramp settles, a gateway still on the old weights: left out of the analysis.
  add(30, 'control', RAMPED_AT + 1000);
  add(60, 'control', RAMPED_AT + SETTLE_MS + 1000); // since the ramp: 30/70
  add(140, 'treatment', RAMPED_AT + SETTLE_MS + 1000);
  return out;
};

/**
 * An A/A guarded rollout through every step of the default plan (95/5 → 75/25 → 50/50): both
 * variants behave the same, but the click rate rises from phase to phase and units come back
 * across phases, so a ramp moves some of them. Pooling units over phases would compare control's
 * early units with treatment's late ones.
 */
const AA = 'aa-rollout';
const AA_STARTS = [start + 3_600_000, start + 2 * 3_600_000];
const iso = (t: number) => new Date(t).toISOString();
const aaExperiment = {
  ...experiment(AA, [{ key: 'control', weight: 50 }, { key: 'treatment', weight: 50 }], { primary: 'ctr', guardrails: ['error_rate', 'latency_ms', 'dwell_time', 'clicks_per_impression'] }),
  startedAt: iso(start),
  phases: [
    { startedAt: iso(start), weights: { control: 95, treatment: 5 } },
    { startedAt: iso(AA_STARTS[0]!), weights: { control: 75, treatment: 25 } },
    { startedAt: iso(AA_STARTS[1]!), weights: { control: 50, treatment: 50 } },
  ],
};
const aaEvents = (): Event[] => rampedData({ experiment: AA, units: 3000, seed: 31, start, phaseStarts: AA_STARTS, weights: [[95, 5], [75, 25], [50, 50]], pClick: [0.1, 0.25, 0.5] });

/** Checked against plain per-unit statistics: CUPED is off (its own experiment below has it on). */
const keyExperiment = {
  ...experiment(KEY, VARIANTS, { primary: 'ctr', guardrails: ['dwell_time', 'clicks_per_impression', 'revenue_per_request', 'no_such_metric', 'error_rate'] }),
  analysis: { cuped: false },
};
/** Units with clicks and dwell before their first exposure, analysed with CUPED over 2 hours. */
const CUPED = 'cuped-exp';
const CUPED_WINDOW_MS = 2 * 3_600_000;
const cupedExperiment = {
  ...experiment(CUPED, [{ key: 'control', weight: 50 }, { key: 'treatment', weight: 50 }], { primary: 'ctr', guardrails: ['dwell_time', 'error_rate'] }),
  analysis: { preWindowDays: 1 },
};
const cupedEvents = (): Event[] => rampedData({ experiment: CUPED, units: 1500, seed: 41, start: start + 3 * 3_600_000, phaseStarts: [start + 4 * 3_600_000], weights: [[50, 50], [50, 50]], preHistory: CUPED_WINDOW_MS });

/** The same data as KEY, analysed with a Holm correction over its primary and secondary metrics. */
const CORRECTED = 'ranker-v2-holm';
const correctedExperiment = {
  ...experiment(CORRECTED, VARIANTS, { primary: 'ctr', secondary: ['clicks_per_impression', 'revenue_per_request'], guardrails: ['error_rate'] }),
  analysis: { correction: 'holm' as const, cuped: false },
};

/** The same data as KEY, sliced by the country on each unit's exposures (some units send none). */
const SLICED = 'ranker-v2-sliced';
const slicedExperiment = {
  ...experiment(SLICED, VARIANTS, { primary: 'ctr', secondary: ['clicks_per_impression'], guardrails: ['error_rate'] }),
  analysis: { cuped: false, sliceBy: ['country'] },
};
const COUNTRIES = ['JP', 'JP', 'JP', 'US', 'US', 'DE', 'none'];
const countryOf = (unitId: string) => COUNTRIES[[...unitId].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) % 1_000_003, 7) % COUNTRIES.length]!;

/**
 * Interleaved requests (SPEC §13): each exposure carries the merged list and the team of each
 * item; clicks name the request and the item. Treatment's items are clicked more often.
 */
const INTERLEAVED = 'ranker-interleaved';
const interleavedExperiment = {
  ...experiment(INTERLEAVED, [{ key: 'control', weight: 50 }, { key: 'treatment', weight: 50 }], { primary: 'ctr', guardrails: [] }),
  design: 'interleave' as const,
};
function interleavedEvents(): Event[] {
  const r = rng(51);
  const out: Event[] = [];
  for (let u = 0; u < 300; u++) {
    const unitId = `il-u${u}`;
    for (let q = 0; q < 1 + Math.floor(r() * 3); q++) {
      const requestId = `il-${u}-${q}`;
      const items = Array.from({ length: 5 }, (_, i) => `item-${u}-${q}-${i}`);
      const teams = items.map(() => (r() < 0.5 ? 'control' : 'treatment'));
      const ts = start + u * 1000 + q;
      out.push(exposure(unitId, ts, [{ experiment: INTERLEAVED, variant: 'control' }], { requestId, interleaving: { experiment: INTERLEAVED, items, teams } }));
      items.forEach((itemId, i) => {
        if (r() < (teams[i] === 'treatment' ? 0.25 : 0.15)) {
          const click = behaviour('click', unitId, ts + 100, { requestId, itemId });
          out.push(click);
          // A second click on the same item of the same request credits it once.
          if (r() < 0.2) out.push(behaviour('click', unitId, ts + 200, { requestId, itemId }));
        }
      });
      // Clicks on an item that was not in the list, or naming no request, credit nobody.
      if (r() < 0.1) out.push(behaviour('click', unitId, ts + 300, { requestId, itemId: 'not-shown' }));
      if (r() < 0.1) out.push(behaviour('click', unitId, ts + 300, { itemId: items[0]! }));
    }
  }
  return out;
}

/** Shadow pairs of route `recommend` as a gateway logs them (SPEC §13): the shadow is slower, errs more, and ranks a little differently. */
function shadowEvents(): Event[] {
  const r = rng(61);
  return Array.from({ length: 400 }, (_, i) => {
    const primaryOut = Array.from({ length: 4 }, () => Math.round(r() * 1000) / 1000);
    const shadowOut = i % 10 === 0 ? [...primaryOut] : primaryOut.map((x) => Math.round((x + (r() - 0.5) * 0.2) * 1000) / 1000);
    return behaviour('shadow', `sh-u${i % 150}`, start + i * 1000, {
      requestId: `sh-req-${i}`,
      shadow: {
        compare: 'predictions',
        primary: { params: { version: 'v1' }, status: r() < 0.02 ? 503 : 200, latencyMs: 5 + r() * 10, output: primaryOut },
        shadow: { params: { version: 'v3' }, status: r() < 0.08 ? 503 : 200, latencyMs: 8 + r() * 12, ...(i % 25 === 0 ? {} : { output: shadowOut }) },
      },
    });
  });
}

async function boot(): Promise<void> {
  deps = await compose(config);
  app = await buildApp(config, deps);
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

async function shutdown(): Promise<void> {
  await app.close();
  await deps.close();
}

async function get<T>(path: string, token: string | null = RESULTS_TOKEN): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(base + path, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as T, headers: res.headers };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bunryu-e2e-'));
  service = await fakeExperimentService(
    TOKEN,
    snapshot(3, [keyExperiment, rampedExperiment, aaExperiment, correctedExperiment, cupedExperiment, slicedExperiment, interleavedExperiment], CATALOGUE),
  );
  config = ConfigSchema.parse({
    BUNRYU_DATA_DIR: dir,
    LOG_LEVEL: 'silent',
    EXPERIMENT_SERVICE_URL: service.url,
    EXPERIMENT_SERVICE_TOKEN: TOKEN,
    BUNRYU_TOKENS: `viewer:${RESULTS_TOKEN}`,
    BUNRYU_AUTH_FAILURE_LIMIT: '3',
    AGGREGATOR_CONFIG_REFRESH_MS: '100',
    AGGREGATOR_SEQUENTIAL_MIN_UNITS: String(MIN_UNITS),
    AGGREGATOR_PHASE_SETTLE_MS: String(SETTLE_MS),
  });
  await boot();
  // The gateway's side: the same embedded log, written by another party.
  producer = createFileEventLog({ dir: join(dir, 'events'), topic: EVENTS_TOPIC }).producer();
  events = experimentData({ experiment: KEY, variants: VARIANTS.map((v) => v.key), units: 900, seed: 7, start, spanMs: 4 * 3_600_000, treatmentLift: 0.25 });
  // Some exposures were answered by a fallback: every 5th of `wild`'s by the route's, every 7th of treatment's by the model's.
  let nth = 0;
  for (const e of events) {
    const variant = e.type === 'exposure' ? e.assignments.find((a) => a.experiment === KEY)?.variant : undefined;
    if (variant === 'wild' && nth++ % 5 === 0) e.fallback = 'route';
    if (variant === 'treatment' && nth++ % 7 === 0) e.fallback = 'model';
  }
  // A unit exposed to another experiment too, and behaviour of units never exposed: neither may leak in.
  events.push(exposure('stranger', start + 10, [{ experiment: 'other-exp', variant: 'b' }]), behaviour('click', 'stranger', start + 20), behaviour('click', 'nobody', start + 30));
  events.push(...rampedEvents(), ...aaEvents(), ...cupedEvents(), ...interleavedEvents(), ...shadowEvents());
  events.push(
    ...events
      .filter((e) => e.type === 'exposure' && e.assignments.some((a) => a.experiment === KEY))
      .map((e) => ({ ...e, eventId: crypto.randomUUID(), assignments: e.assignments.map((a) => ({ ...a, experiment: CORRECTED })) })),
    ...events
      .filter((e) => e.type === 'exposure' && e.assignments.some((a) => a.experiment === KEY))
      .map((e) => ({
        ...e,
        eventId: crypto.randomUUID(),
        assignments: e.assignments.map((a) => ({ ...a, experiment: SLICED })),
        ...(countryOf(e.unitId) === 'none' ? {} : { attributes: { country: countryOf(e.unitId) } }),
      })),
  );
  for (let i = 0; i < events.length; i += 500) await producer.append(events.slice(i, i + 500).map((e) => ({ key: e.unitId, value: JSON.stringify(e) })));
  await waitFor(async () => (await deps.ingester.lag()) === 0, 'the aggregator to consume the log', 30_000);
  await waitFor(() => deps.definitions.experiment(KEY), 'the config snapshot');
});

afterAll(async () => {
  await producer?.close();
  await shutdown();
  await service?.stop();
});

type Expected = Omit<MetricComparison, 'sequentialPValue'>;

/** Statistics of one comparison from the reference aggregates, with core's tests. */
function expectedComparison(type: 'proportion' | 'mean' | 'ratio', c: MetricAggregate, t: MetricAggregate, variant: string): { shown: Expected; seq: number } {
  let r: Comparison;
  let uc: number;
  let ut: number;
  if (type === 'proportion') {
    r = proportionTest({ n: c.units, conversions: c.sum }, { n: t.units, conversions: t.sum });
    uc = (c.sum / c.units) * (1 - c.sum / c.units);
    ut = (t.sum / t.units) * (1 - t.sum / t.units);
  } else if (type === 'mean') {
    r = welchTest({ n: c.units, mean: c.mean, variance: c.variance }, { n: t.units, mean: t.mean, variance: t.variance });
    uc = c.variance;
    ut = t.variance;
  } else {
    const summary = (a: MetricAggregate) => ({ n: a.units, meanNumerator: a.mean, meanDenominator: a.denMean!, varianceNumerator: a.variance, varianceDenominator: a.denVariance!, covariance: a.covariance! });
    r = ratioTest(summary(c), summary(t));
    uc = ratioEstimate(summary(c)).unitVariance;
    ut = ratioEstimate(summary(t)).unitVariance;
  }
  const enough = c.units >= MIN_UNITS && t.units >= MIN_UNITS;
  return {
    shown: { variant, baseline: 'control', diff: r.diff, ci95: r.ci95, relLift: r.relLift, relCi95: r.relCi95, pValue: r.pValue, probabilityToBeat: r.probabilityToBeat },
    seq: enough ? sequentialPValue(r.diff, r.se * r.se, mixingVariance(uc, ut)) : 1,
  };
}

function shownMean(type: string, a: MetricAggregate): number {
  return type === 'ratio' ? a.sum / a.denSum! : a.mean;
}

function shownVariance(type: string, a: MetricAggregate): number {
  if (type === 'proportion') return (a.sum / a.units) * (1 - a.sum / a.units);
  if (type === 'ratio') return ratioEstimate({ n: a.units, meanNumerator: a.mean, meanDenominator: a.denMean!, varianceNumerator: a.variance, varianceDenominator: a.denVariance!, covariance: a.covariance! }).unitVariance;
  return a.variance;
}

/** The API renders numbers it cannot compute as null; the reference has NaN there. */
function expectNear(actual: unknown, expected: number, what: string): void {
  expect(near(actual === null ? NaN : (actual as number), expected), `${what}: got ${actual}, expected ${expected}`).toBe(true);
}

describe('GET /v1/results/:experiment end to end', () => {
  it('checks the sample ratio over the units exposed since the last ramp', async () => {
    const { status, body } = await get<ExperimentResults>(`/v1/results/${RAMPED}`);
    expect(status).toBe(200);
    expect(body.variants.map((v) => v.units)).toEqual([160, 240]);
    // All 400 units against 30/70 would be a mismatch: the check must not look at them all.
    expect(srm([160, 240], [30, 70]).mismatch).toBe(true);
    const since = srm([60, 140], [30, 70]);
    expectNear(body.srm.pValue, since.pValue, 'srm p since the ramp');
    expect(body.srm.mismatch).toBe(false);
  });

  it('analyses an A/A rollout through every step by phase: no SRM, no bias, no unit counted twice', async () => {
    const { status, body } = await get<ExperimentResults>(`/v1/results/${AA}`);
    expect(status).toBe(200);
    const metrics = ['ctr', 'error_rate', 'latency_ms', 'dwell_time', 'clicks_per_impression'];
    const ref = reference(events, AA, metrics.map((k) => SPECS[k]!.spec), Infinity, AA_STARTS, undefined, SETTLE_MS);
    const at = (phase: number, variant: string) => ref.get(`${phase}:${variant}`)!;
    // Each phase's units, and the units a later ramp moved, as the raw data has them.
    expect(body.phases).toEqual(
      aaExperiment.phases.map((p, i) => ({ ...p, units: { control: at(i, 'control').units, treatment: at(i, 'treatment').units }, moved: at(i, 'control').moved + at(i, 'treatment').moved })),
    );
    expect(body.phases!.reduce((a, p) => a + p.moved, 0)).toBeGreaterThan(100);
    // No unit twice: the variants' units are the phases' units, and every unit exposed is there
    // but the few first exposed while a ramp settled or seen in both variants within one phase.
    const total = body.variants.reduce((a, v) => a + v.units, 0);
    expect(total).toBe(body.phases!.reduce((a, p) => a + p.units.control! + p.units.treatment!, 0));
    const firstSeen = new Map<string, number>();
    for (const e of events) if (e.type === 'exposure' && e.assignments.some((a) => a.experiment === AA)) firstSeen.set(e.unitId, Math.min(e.ts, firstSeen.get(e.unitId) ?? Infinity));
    const settling = [...firstSeen.values()].filter((t0) => AA_STARTS.some((s) => t0 >= s && t0 < s + SETTLE_MS)).length;
    expect(settling).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual(firstSeen.size - settling);
    expect(total).toBeGreaterThan((firstSeen.size - settling) * 0.98);
    // The sample ratio is judged per phase against that phase's weights.
    const s = srmAcrossGroups([0, 1, 2].map((i) => ({ counts: [at(i, 'control').units, at(i, 'treatment').units], weights: Object.values(aaExperiment.phases[i]!.weights) })));
    expectNear(body.srm.pValue, s.pValue, 'srm p across phases');
    expect(body.srm.mismatch).toBe(false);
    for (const key of metrics) {
      const m = body.metrics.find((x) => x.metric === key)!;
      const j = metrics.indexOf(key);
      // The phase-weighted estimate, from the reference's per-phase figures and core's statistics.
      const arm = (i: number, v: string) => {
        const a = at(i, v).metrics[j]!;
        const type = SPECS[key]!.type;
        const estimate = shownMean(type, a);
        return { n: a.units, estimate, varianceOfEstimate: shownVariance(type, a) / a.units };
      };
      const [c, t] = poststratify([0, 1, 2].map((i) => [arm(i, 'control'), arm(i, 'treatment')]));
      expectNear(m.variants[0]!.mean, c!.estimate, `${key} control mean`);
      expectNear(m.variants[1]!.mean, t!.estimate, `${key} treatment mean`);
      expectNear(m.comparisons[0]!.diff, t!.estimate - c!.estimate, `${key} diff`);
      // A/A: no difference. 3.3 standard errors is a 0.1% two-sided chance per metric.
      const se = Math.sqrt(c!.varianceOfEstimate + t!.varianceOfEstimate);
      expectNear((m.comparisons[0]!.ci95[1]! - m.comparisons[0]!.ci95[0]!) / 2, 1.959963984540054 * se, `${key} ci half-width`);
      expect(Math.abs(m.comparisons[0]!.diff! / se), key).toBeLessThan(3.3);
    }
    // Pooling the same units over phases (moved units in their first variant, with all their
    // data) shows a difference that is not there: this data does test the phases.
    const firstVariant = new Map<string, string>();
    for (const e of [...events].sort((a, b) => a.ts - b.ts)) {
      const a = e.type === 'exposure' ? e.assignments.find((x) => x.experiment === AA) : undefined;
      if (a && !firstVariant.has(e.unitId)) firstVariant.set(e.unitId, a.variant);
    }
    const naive = (variant: string) => reference(events.filter((e) => e.type !== 'exposure' || firstVariant.get(e.unitId) === variant).map((e) => (e.type === 'exposure' ? { ...e, assignments: e.assignments.map((a) => ({ ...a, variant })) } : e)), AA, [SPECS.ctr!.spec]).get(variant)!.metrics[0]!;
    const [nc, nt] = [naive('control'), naive('treatment')];
    const z = proportionTest({ n: nc.units, conversions: nc.sum }, { n: nt.units, conversions: nt.sum });
    expect(z.pValue).toBeLessThan(0.001);
  });

  it('corrects the primary and secondary metrics × treatments together (Holm), and widens their intervals to match', async () => {
    const { status, body } = await get<ExperimentResults>(`/v1/results/${CORRECTED}`);
    expect(status).toBe(200);
    const family = body.metrics.filter((m) => ['ctr', 'clicks_per_impression', 'revenue_per_request'].includes(m.metric));
    const tests = family.flatMap((m) => m.comparisons.map((c) => ({ m, c })));
    expect(tests).toHaveLength(6);
    const adjusted = adjustPValues(tests.map(({ c }) => c.pValue!), 'holm');
    tests.forEach(({ m, c }, i) => {
      expect(c.adjusted!.method).toBe('holm');
      expectNear(c.adjusted!.pValue, adjusted[i]!, `${m.metric}/${c.variant} adjusted p`);
      const [lo, hi] = c.adjusted!.ci95 as [number, number];
      expect(lo).toBeLessThanOrEqual(c.ci95[0]! + 1e-12);
      expect(hi).toBeGreaterThanOrEqual(c.ci95[1]! - 1e-12);
      // Normal-quantile tests: the widened interval excludes 0 exactly when the adjusted p is below 5%.
      expect(lo > 0 || hi < 0, `${m.metric}/${c.variant}`).toBe(c.adjusted!.pValue! < 0.05);
    });
    expect(tests.some(({ c }) => c.adjusted!.pValue! > c.pValue!)).toBe(true);
    // Guardrails are not part of the family; the raw figures stay as they are.
    for (const m of body.metrics.filter((x) => ['error_rate', 'latency_ms'].includes(x.metric))) for (const c of m.comparisons) expect(c.adjusted).toBeUndefined();
    const plain = (await get<ExperimentResults>(`/v1/results/${KEY}`)).body;
    expect(plain.metrics.find((m) => m.metric === 'ctr')!.comparisons[0]!.adjusted).toBeUndefined();
    expect(family.find((m) => m.metric === 'ctr')!.comparisons.map((c) => c.pValue)).toEqual(plain.metrics.find((m) => m.metric === 'ctr')!.comparisons.map((c) => c.pValue));
  });

  it('slices by a declared attribute: each slice equals the plain analysis of its units, corrected across every slice (Holm)', async () => {
    const { status, body } = await get<ExperimentSlices>(`/v1/results/${SLICED}/slices`);
    expect(status).toBe(200);
    expect(body.attributes).toEqual(['country']);
    expect(body.slices.map((x) => x.value)).toEqual(['JP', 'US', '(none)', 'DE']);
    const tests: { got: MetricComparison; want: Expected }[] = [];
    for (const slice of body.slices) {
      const inSlice = (unitId: string) => (countryOf(unitId) === 'none' ? '(none)' : countryOf(unitId)) === slice.value;
      const ref = reference(events.filter((e) => inSlice(e.unitId)), SLICED, [SPECS.ctr!.spec, SPECS.clicks_per_impression!.spec]);
      expect(slice.variants.map((v) => v.units)).toEqual(VARIANTS.map((v) => ref.get(v.key)!.units));
      // Only the metrics decided on are sliced; guardrails are not.
      expect(slice.metrics.map((m) => m.metric)).toEqual(['ctr', 'clicks_per_impression']);
      slice.metrics.forEach((m, j) => {
        for (const c of m.comparisons) {
          const want = expectedComparison(SPECS[m.metric]!.type, ref.get('control')!.metrics[j]!, ref.get(c.variant)!.metrics[j]!, c.variant).shown;
          expectNear(c.diff, want.diff!, `${slice.value} ${m.metric}/${c.variant} diff`);
          expectNear(c.pValue, want.pValue!, `${slice.value} ${m.metric}/${c.variant} p`);
          tests.push({ got: c, want });
        }
      });
    }
    expect(body.correction).toEqual({ method: 'holm', tests: tests.length });
    const adjusted = adjustPValues(tests.map((t) => t.want.pValue!), 'holm');
    tests.forEach((t, i) => {
      expect(t.got.adjusted!.method).toBe('holm');
      expectNear(t.got.adjusted!.pValue, adjusted[i]!, `adjusted p ${i}`);
    });
    expect(tests.some((t) => t.got.adjusted!.pValue! > t.got.pValue!)).toBe(true);
    // An experiment that declares no slices answers none.
    expect((await get<ExperimentSlices>(`/v1/results/${KEY}/slices`)).body).toMatchObject({ attributes: [], slices: [] });
    expect((await get<ExperimentSlices>(`/v1/results/nope/slices`)).status).toBe(404);
  });

  it('shows "as served" figures beside the headline: only units never answered by a fallback, marked as biased', async () => {
    const { status, body } = await get<AsServedResults>(`/v1/results/${KEY}/as-served`);
    expect(status).toBe(200);
    expect(body.biased).toBe(true);
    const fellBack = new Set(events.filter((e) => e.type === 'exposure' && e.fallback && e.assignments.some((a) => a.experiment === KEY)).map((e) => e.unitId));
    expect(fellBack.size).toBeGreaterThan(20);
    const kept = events.filter((e) => !fellBack.has(e.unitId));
    const ref = reference(kept, KEY, [SPECS.ctr!.spec]);
    expect(body.variants.map((v) => v.units)).toEqual(VARIANTS.map((v) => ref.get(v.key)!.units));
    const ctr = body.metrics.find((m) => m.metric === 'ctr')!;
    for (const c of ctr.comparisons) {
      const want = expectedComparison('proportion', ref.get('control')!.metrics[0]!, ref.get(c.variant)!.metrics[0]!, c.variant).shown;
      expectNear(c.diff, want.diff!, `as served ctr/${c.variant} diff`);
      expectNear(c.pValue, want.pValue!, `as served ctr/${c.variant} p`);
    }
    // Control never fell back: its units are the same as in the headline figures.
    const headline = (await get<ExperimentResults>(`/v1/results/${KEY}`)).body;
    expect(body.variants[0]).toEqual(headline.variants[0]);
    expect(body.variants.find((v) => v.key === 'wild')!.units).toBeLessThan(headline.variants.find((v) => v.key === 'wild')!.units);
  });

  it('credits each click naming a served request and item to the variant that contributed it, and tests the preferences per unit', async () => {
    // A redelivered batch of interleaved exposures and clicks changes nothing.
    const again = events.filter((e) => e.unitId.startsWith('il-')).slice(0, 200);
    await producer.append(again.map((e) => ({ key: e.unitId, value: JSON.stringify(e) })));
    redelivered += again.length;
    await waitFor(async () => (await deps.ingester.lag()) === 0, 'the aggregator to consume the log', 30_000);
    const { status, body } = await get<ExperimentResults>(`/v1/results/${INTERLEAVED}`);
    expect(status).toBe(200);
    // The tally, computed here from the raw events.
    const served = new Map<string, { unitId: string; teamOf: Map<string, string> }>();
    for (const e of events) if (e.type === 'exposure' && e.interleaving?.experiment === INTERLEAVED) served.set(e.requestId!, { unitId: e.unitId, teamOf: new Map(e.interleaving.items.map((id, i) => [id, e.interleaving!.teams[i]!])) });
    const credited = new Set<string>();
    const perUnit = new Map<string, { control: number; treatment: number }>();
    for (const e of events) {
      const s = e.type === 'click' && e.requestId !== undefined && e.itemId !== undefined ? served.get(e.requestId) : undefined;
      const team = s?.teamOf.get(e.itemId!);
      if (!s || !team || credited.has(`${e.requestId} ${e.itemId}`)) continue;
      credited.add(`${e.requestId} ${e.itemId}`);
      const tally = perUnit.get(s.unitId) ?? { control: 0, treatment: 0 };
      tally[team as 'control' | 'treatment']++;
      perUnit.set(s.unitId, tally);
    }
    const tallies = [...perUnit.values()];
    const wins = tallies.filter((t) => t.treatment > t.control).length;
    const losses = tallies.filter((t) => t.treatment < t.control).length;
    expect(body.interleaving).toEqual({
      click: 'click',
      requests: served.size,
      units: new Set([...served.values()].map((s) => s.unitId)).size,
      clickedUnits: perUnit.size,
      variants: [{ key: 'control', preferred: losses }, { key: 'treatment', preferred: wins }],
      ties: perUnit.size - wins - losses,
      preference: wins / (wins + losses),
      pValue: signTest(wins, losses),
      sequentialPValue: sequentialSignPValue(wins, losses),
    });
    expect(wins).toBeGreaterThan(losses);
    // An A/B experiment has no interleaving figures.
    expect((await get<ExperimentResults>(`/v1/results/${KEY}`)).body.interleaving).toBeUndefined();
  });

  it('reports a route\'s shadow pair by pair: error rates, paired differences, output agreement', async () => {
    // A redelivered batch of pairs changes nothing.
    const pairs = events.filter((e) => e.type === 'shadow');
    await producer.append(pairs.slice(0, 100).map((e) => ({ key: e.unitId, value: JSON.stringify(e) })));
    redelivered += 100;
    await waitFor(async () => (await deps.ingester.lag()) === 0, 'the aggregator to consume the log', 30_000);
    const { status, body } = await get<ShadowResults>('/v1/shadow/recommend');
    expect(status).toBe(200);
    // Computed here, from the raw pairs.
    const n = pairs.length;
    const err = (s: number) => (s >= 500 ? 1 : 0);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const interval = (xs: number[]) => {
      const m = mean(xs);
      const sd = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
      return [m - 1.959963984540054 * (sd / Math.sqrt(xs.length)), m + 1.959963984540054 * (sd / Math.sqrt(xs.length))];
    };
    const p = pairs.map((e) => e.shadow!);
    expect(body.pairs).toBe(n);
    expectNear(body.primary.errorRate, mean(p.map((x) => err(x.primary.status))), 'primary error rate');
    expectNear(body.shadow.errorRate, mean(p.map((x) => err(x.shadow.status))), 'shadow error rate');
    const de = p.map((x) => err(x.shadow.status) - err(x.primary.status));
    expectNear(body.errorRateDiff.diff, mean(de), 'error rate diff');
    expectNear(body.errorRateDiff.ci95[0], interval(de)[0]!, 'error rate diff ci low');
    const dl = p.map((x) => x.shadow.latencyMs - x.primary.latencyMs);
    expect(near(body.latencyDiffMs.diff!, mean(dl), 1e-9)).toBe(true);
    expect(near(body.latencyDiffMs.ci95[1]!, interval(dl)[1]!, 1e-9)).toBe(true);
    expect(body.latencyDiffMs.ci95[0]!).toBeGreaterThan(0);
    // Agreement: identical lists, mean absolute difference per element, and Spearman's ρ by hand.
    const withBoth = p.filter((x) => x.shadow.output !== undefined);
    const rank = (xs: number[]) => xs.map((x) => xs.filter((y) => y < x).length + (xs.filter((y) => y === x).length + 1) / 2);
    const pearson = (a: number[], b: number[]) => {
      const [ma, mb] = [mean(a), mean(b)];
      const cov = a.reduce((s, x, i) => s + (x - ma) * (b[i]! - mb), 0);
      return cov / Math.sqrt(a.reduce((s, x) => s + (x - ma) ** 2, 0) * b.reduce((s, x) => s + (x - mb) ** 2, 0));
    };
    const outs = withBoth.map((x) => [x.primary.output as number[], x.shadow.output as number[]] as const);
    expect(body.agreement.pairs).toBe(withBoth.length);
    expectNear(body.agreement.identical, outs.filter(([a, b]) => JSON.stringify(a) === JSON.stringify(b)).length / outs.length, 'identical share');
    expectNear(body.agreement.meanAbsDiff, mean(outs.map(([a, b]) => mean(a.map((x, i) => Math.abs(x - b[i]!))))), 'mean absolute difference');
    const rhos = outs.map(([a, b]) => pearson(rank(a), rank(b))).filter(Number.isFinite);
    expectNear(body.agreement.rankCorrelation, mean(rhos), 'rank correlation');
    // A route without a shadow has no pairs.
    expect((await get<ShadowResults>('/v1/shadow/nothing-here')).body).toMatchObject({ pairs: 0, agreement: { pairs: 0 } });
  });

  it('adjusts proportion and mean metrics by CUPED where units have pre-exposure data, keeping the raw figures beside', async () => {
    const { status, body } = await get<ExperimentResults>(`/v1/results/${CUPED}`);
    expect(status).toBe(200);
    const keys = ['ctr', 'dwell_time'];
    const ref = reference(events, CUPED, keys.map((k) => SPECS[k]!.spec), Infinity, undefined, 86_400_000);
    keys.forEach((key, j) => {
      const m = body.metrics.find((x) => x.metric === key)!;
      const sums = (variant: string) => {
        const a = ref.get(variant)!.metrics[j]!;
        const sumY2 = SPECS[key]!.type === 'proportion' ? a.sum : (a.units - 1) * a.variance + (a.sum * a.sum) / a.units;
        return { n: a.units, sumY: a.sum, sumY2, sumX: a.covariate!.sumX, sumX2: a.covariate!.sumX2, sumXY: a.covariate!.sumXY };
      };
      const want = cupedTest(sums('control'), sums('treatment'));
      const c = m.comparisons[0]!;
      expectNear(c.cuped!.theta, want.theta, `${key} theta`);
      expectNear(c.cuped!.varianceReduction, want.varianceReduction, `${key} variance reduction`);
      expectNear(c.diff, want.diff, `${key} adjusted diff`);
      expectNear(c.ci95[0], want.ci95[0], `${key} adjusted ci low`);
      expectNear(c.pValue, want.pValue, `${key} adjusted p`);
      expectNear(c.relLift, want.relLift, `${key} adjusted relative lift`);
      expectNear(m.variants[0]!.mean, want.adjustedMeans[0], `${key} control adjusted mean`);
      expectNear(m.variants[1]!.variance! / m.variants[1]!.units, want.adjustedVariancesOfMean[1], `${key} treatment variance of the adjusted mean`);
      // The raw figures are those of the plain test on the same units.
      const plain = expectedComparison(SPECS[key]!.type, ref.get('control')!.metrics[j]!, ref.get('treatment')!.metrics[j]!, 'treatment').shown;
      expectNear(c.raw!.diff, plain.diff!, `${key} raw diff`);
      expectNear(m.variants[0]!.raw!.mean, shownMean(SPECS[key]!.type, ref.get('control')!.metrics[j]!), `${key} raw control mean`);
    });
    // Active users click more before and during: the covariate removes real variance.
    expect(body.metrics.find((x) => x.metric === 'ctr')!.comparisons[0]!.cuped!.varianceReduction).toBeGreaterThan(0.05);
    // Exposure metrics have no pre-exposure data: plain statistics.
    expect(body.metrics.find((x) => x.metric === 'error_rate')!.comparisons[0]!.cuped).toBeUndefined();
  });

  it('shows assigned vs served and latency percentiles with order-statistic intervals, from every exposure once', async () => {
    // A redelivered batch must not count twice.
    const again = events.filter((e) => e.type === 'exposure').slice(0, 300);
    await producer.append(again.map((e) => ({ key: e.unitId, value: JSON.stringify(e) })));
    redelivered += again.length;
    await waitFor(async () => (await deps.ingester.lag()) === 0, 'the aggregator to consume the log', 30_000);
    const { body } = await get<ExperimentResults>(`/v1/results/${KEY}`);
    const exposures = (variant: string) => [...new Map(events.filter((e) => e.type === 'exposure' && e.assignments.some((a) => a.experiment === KEY && a.variant === variant)).map((e) => [e.eventId, e])).values()];
    for (const v of VARIANTS) {
      const xs = exposures(v.key);
      const count = (f: 'route' | 'model') => xs.filter((e) => e.fallback === f).length;
      const served = body.served!.find((s) => s.key === v.key)!;
      expect(served.exposures).toBe(xs.length);
      expectNear(served.routeFallback, count('route') / xs.length, `${v.key} route fallback share`);
      expectNear(served.modelFallback, count('model') / xs.length, `${v.key} model fallback share`);
      expectNear(served.asAssigned, 1 - (count('route') + count('model')) / xs.length, `${v.key} served as assigned`);
      // Percentiles: the order statistic at ⌈n·p⌉, the interval between those at n·p ∓ 1.96·√(n·p·(1 − p)).
      const sorted = xs.filter((e) => e.latencyMs !== undefined).map((e) => e.latencyMs!).sort((a, b) => a - b);
      const n = sorted.length;
      const at = (rank: number) => sorted[Math.min(n, Math.max(1, rank)) - 1]!;
      const got = body.latencyPercentiles!.find((l) => l.key === v.key)!;
      expect(got.n).toBe(n);
      expect(got.percentiles.map((q) => q.p)).toEqual([0.5, 0.95, 0.99]);
      for (const q of got.percentiles) {
        const half = 1.959963984540054 * Math.sqrt(n * q.p * (1 - q.p));
        expect([q.value, q.ci95[0], q.ci95[1]], `${v.key} p${q.p * 100}`).toEqual([at(Math.ceil(n * q.p)), at(Math.floor(n * q.p - half)), at(Math.ceil(n * q.p + half) + 1)]);
        expect(q.ci95[0]).toBeLessThanOrEqual(q.value);
        expect(q.ci95[1]).toBeGreaterThanOrEqual(q.value);
      }
    }
    expect(body.served!.find((s) => s.key === 'wild')!.routeFallback).toBeGreaterThan(0.1);
    expect(body.served!.find((s) => s.key === 'control')!.asAssigned).toBe(1);
  });

  it('answers units, exposures and SRM equal to the raw data', async () => {
    const { status, body } = await get<ExperimentResults>(`/v1/results/${KEY}`);
    expect(status).toBe(200);
    const ref = reference(events, KEY, []);
    expect(body.variants).toEqual(VARIANTS.map((v) => ({ key: v.key, units: ref.get(v.key)!.units, exposures: ref.get(v.key)!.exposures })));
    const s = srm(VARIANTS.map((v) => ref.get(v.key)!.units), VARIANTS.map((v) => v.weight));
    expectNear(body.srm.pValue, s.pValue, 'srm p');
    expect(body.srm.mismatch).toBe(s.mismatch);
    // updatedAt: the newest data counted (the analysed units' exposures and their events after exposure).
    const firstExposure = new Map<string, { ts: number; variants: Set<string> }>();
    for (const e of events) {
      for (const a of e.type === 'exposure' ? e.assignments.filter((x) => x.experiment === KEY) : []) {
        const u = firstExposure.get(e.unitId) ?? { ts: Infinity, variants: new Set<string>() };
        u.ts = Math.min(u.ts, e.ts);
        u.variants.add(a.variant);
        firstExposure.set(e.unitId, u);
      }
    }
    const counted = events.filter((e) => {
      const u = firstExposure.get(e.unitId);
      return u !== undefined && u.variants.size === 1 && e.ts >= u.ts;
    });
    const newest = Math.max(...counted.map((e) => e.ts));
    expect(body.updatedAt).toBe(new Date(newest).toISOString());
  });

  it('answers every metric (primary, guardrails, built-ins; unknown ones left out) with figures and statistics computed independently', async () => {
    const { body } = await get<ExperimentResults>(`/v1/results/${KEY}`);
    expect(body.metrics.map((m) => m.metric)).toEqual(['ctr', 'dwell_time', 'clicks_per_impression', 'revenue_per_request', 'error_rate', 'latency_ms']);
    const ref: Map<string, ReferenceVariant> = reference(events, KEY, body.metrics.map((m) => SPECS[m.metric]!.spec));
    body.metrics.forEach((m, j) => {
      const { type } = SPECS[m.metric]!;
      expect(m.type).toBe(type);
      for (const v of m.variants) {
        const a = ref.get(v.key)!.metrics[j]!;
        expect([v.units, v.count], `${m.metric}/${v.key}`).toEqual([a.units, a.count]);
        expectNear(v.sum, a.sum, `${m.metric}/${v.key} sum`);
        expectNear(v.mean, shownMean(type, a), `${m.metric}/${v.key} mean`);
        expectNear(v.variance, shownVariance(type, a), `${m.metric}/${v.key} variance`);
      }
      expect(m.comparisons.map((c) => c.variant)).toEqual(['treatment', 'wild']);
      for (const c of m.comparisons) {
        const { shown } = expectedComparison(type, ref.get('control')!.metrics[j]!, ref.get(c.variant)!.metrics[j]!, c.variant);
        expect(c.baseline).toBe('control');
        for (const field of ['diff', 'relLift', 'pValue', 'probabilityToBeat'] as const) expectNear(c[field], shown[field] as number, `${m.metric}/${c.variant} ${field}`);
        for (const field of ['ci95', 'relCi95'] as const) {
          expectNear(c[field][0], shown[field][0] as number, `${m.metric}/${c.variant} ${field}[0]`);
          expectNear(c[field][1], shown[field][1] as number, `${m.metric}/${c.variant} ${field}[1]`);
        }
      }
    });
    // The data has a real click lift for the treatments: the analysis must see it.
    expect(body.metrics[0]!.comparisons[0]!.pValue!).toBeLessThan(0.01);
  });

  it('timeseries: each point equals the raw data up to its end, and the sequential p-value is the running minimum over the points', async () => {
    const results = (await get<ExperimentResults>(`/v1/results/${KEY}`)).body;
    for (const metric of Object.keys(SPECS)) {
      const { status, body } = await get<Timeseries>(`/v1/results/${KEY}/timeseries?metric=${metric}`);
      expect(status).toBe(200);
      expect(body).toMatchObject({ experiment: KEY, metric, type: SPECS[metric]!.type, baseline: 'control' });
      expect(body.points.length).toBeGreaterThan(3);
      const running = new Map<string, number>();
      body.points.forEach((p, k) => {
        const end = k === body.points.length - 1 ? Infinity : Date.parse(p.ts);
        const ref = reference(events, KEY, [SPECS[metric]!.spec], end);
        for (const v of p.variants) {
          const a = ref.get(v.key)?.metrics[0];
          expect(v.units, `${metric} point ${k} ${v.key}`).toBe(a?.units ?? 0);
          if (a && a.units > 0) expectNear(v.mean, shownMean(SPECS[metric]!.type, a), `${metric} point ${k} ${v.key} mean`);
        }
        for (const c of p.comparisons) {
          const ca = ref.get('control')?.metrics[0];
          const ta = ref.get(c.variant)?.metrics[0];
          if (!ca || !ta || ca.units < 2 || ta.units < 2) continue;
          const { shown, seq } = expectedComparison(SPECS[metric]!.type, ca, ta, c.variant);
          expectNear(c.diff, shown.diff as number, `${metric} point ${k} diff`);
          const min = Math.min(running.get(c.variant) ?? 1, seq);
          running.set(c.variant, min);
          expectNear(c.sequentialPValue, min, `${metric} point ${k} ${c.variant} sequential p`);
        }
      });
      // The results' sequential p-value is the last point's.
      const final = results.metrics.find((m) => m.metric === metric)!;
      expect(final.comparisons.map((c) => c.sequentialPValue)).toEqual(body.points.at(-1)!.comparisons.map((c) => c.sequentialPValue));
    }
  });

  it('timeseries honours ?interval= and refuses a bad one or an unknown metric', async () => {
    const hourly = await get<Timeseries>(`/v1/results/${KEY}/timeseries?metric=ctr&interval=1h`);
    expect(hourly.body.interval).toBe('1h');
    const ends = hourly.body.points.map((p) => Date.parse(p.ts));
    expect(ends.slice(0, -1).map((t) => t % 3_600_000)).toEqual(ends.slice(0, -1).map(() => 0));
    // The last point holds everything and is labelled at least an hour after the one before.
    expect(ends.at(-1)! - ends.at(-2)!).toBeGreaterThanOrEqual(3_600_000);
    expect((await get(`/v1/results/${KEY}/timeseries?metric=ctr&interval=soon`)).status).toBe(400);
    expect((await get(`/v1/results/${KEY}/timeseries?metric=ctr&interval=1s`)).status).toBe(400);
    expect((await get(`/v1/results/${KEY}/timeseries?metric=no_such_metric`)).status).toBe(404);
  });

  it('answers 404 for an unknown experiment and 400 for a malformed key', async () => {
    const missing = await get<{ error: { code: string } }>('/v1/results/no-such-experiment');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('BUNRYU_NOT_FOUND');
    expect((await get('/v1/results/Bad%20Key')).status).toBe(400);
  });

  it('reports readiness and ingestion figures', async () => {
    const { headers: _headers, ...ready } = await get<{ status: string; checks: Record<string, string> }>('/readyz', null);
    expect(ready).toEqual({ status: 200, body: expect.objectContaining({ status: 'ready', checks: { clickhouse: 'ok', 'event-log': 'ok', definitions: 'ok' } }) });
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(new RegExp(`bunryu_aggregator_events_ingested_total\\{[^}]*\\} ${events.length + redelivered}\\b`));
    expect(text).toMatch(/bunryu_aggregator_consumer_lag\{[^}]*\} 0\b/);
    expect(text).toMatch(/bunryu_aggregator_insert_duration_seconds_count\{[^}]*\} [1-9]/);
  });

  it('after a restart with the experiment-service down, answers the same results from disk, and keeps results of experiments that left the snapshot', async () => {
    const before = (await get<ExperimentResults>(`/v1/results/${KEY}`)).body;
    // The experiment is rolled back: it leaves the snapshot, its results must stay readable.
    service.snapshot = snapshot(4, [], CATALOGUE);
    await waitFor(() => deps.definitions.version === 4, 'the new snapshot');
    expect((await get<ExperimentResults>(`/v1/results/${KEY}`)).body).toEqual(before);
    await shutdown();
    service.snapshot = null;
    await boot();
    expect((await get<ExperimentResults>(`/v1/results/${KEY}`)).body).toEqual(before);
    expect(await deps.ingester.lag()).toBe(0);
  });

  // Last: it leaves this address limited.
  it('answers results and timeseries only to a viewer token, and 429 to an address that keeps guessing', async () => {
    for (const path of [`/v1/results/${KEY}`, `/v1/results/${KEY}/timeseries?metric=ctr`]) {
      const anonymous = await get<{ error: { code: string } }>(path, null);
      expect(anonymous.status).toBe(401);
      expect(anonymous.body.error.code).toBe('BUNRYU_UNAUTHORIZED');
    }
    // The third failure from this address reaches the limit of this config: the next request is refused whatever it carries.
    expect((await get(`/v1/results/${KEY}`, 'not-a-token-at-all')).status).toBe(401);
    const limited = await get<{ error: { code: string } }>(`/v1/results/${KEY}`);
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('BUNRYU_RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
