import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ExperimentDefinition, assign, bucket, type AssignableConfig } from '@bunryu/core';
import { TOTAL, evenSplit, formatWeight, parseWeight, rebalance, sum } from '../public/js/lib/weights.js';
import { rampMoves, variantRanges } from '../public/js/lib/buckets.js';
import { emptyForm, fieldFor, formFromExperiment, parseList, parseParams, toDefinition } from '../public/js/lib/definition.js';
import { chooseInterval, liftSeries, relativeLift } from '../public/js/lib/timeseries.js';
import { defaultVersion, routesServing } from '../public/js/lib/model-routes.js';

// The browser's pure modules: weight sliders, bucket arithmetic for the release dialogs, the
// form ⇄ definition mapping and the time-series adapter.

const weightsArb = fc.integer({ min: 2, max: 8 }).chain((n) =>
  fc.array(fc.nat({ max: 100 }), { minLength: n, maxLength: n }).map((raw) => {
    // Any n non-negative hundredths that sum to exactly 100%.
    const total = raw.reduce((a, b) => a + b, 0) || 1;
    const hs = raw.map((r) => Math.floor((r * TOTAL) / total));
    hs[0]! += TOTAL - sum(hs);
    return hs;
  }),
);

describe('weight sliders', () => {
  it('always total exactly 100% and keep the moved weight', () => {
    fc.assert(
      fc.property(weightsArb, fc.nat(), fc.integer({ min: -500, max: 10_500 }), (hs, i, value) => {
        const index = i % hs.length;
        const out = rebalance(hs, index, value);
        expect(sum(out)).toBe(TOTAL);
        expect(out.every((w) => Number.isInteger(w) && w >= 0)).toBe(true);
        expect(out[index]).toBe(Math.max(0, Math.min(TOTAL, value)));
      }),
    );
  });

  it('keeps the proportions of the other variants', () => {
    expect(rebalance([5000, 3000, 2000], 0, 0)).toEqual([0, 6000, 4000]);
    expect(rebalance([5000, 5000], 1, 7000)).toEqual([3000, 7000]);
    expect(rebalance([10000, 0, 0], 0, 4000)).toEqual([4000, 3000, 3000]);
    expect(sum(rebalance([3333, 3333, 3334], 2, 1)).valueOf()).toBe(TOTAL);
  });

  it('splits evenly, and reads typed weights with at most two decimals', () => {
    expect(evenSplit(3)).toEqual([3334, 3333, 3333]);
    expect(parseWeight('33.33')).toBe(3333);
    expect(parseWeight('100')).toBe(10000);
    for (const bad of ['33.333', '-1', '101', 'abc', '']) expect(parseWeight(bad), bad).toBeNull();
    expect([formatWeight(5000), formatWeight(3330), formatWeight(3333)]).toEqual(['50', '33.3', '33.33']);
  });
});

describe('bucket ranges of a ramp', () => {
  it('name exactly the units that change variant under the real assignment', () => {
    const experiment = (weights: number[]) => ({
      key: 'ramp-exp',
      route: 'r',
      status: 'running' as const,
      salt: 's1',
      allocation: { start: 0, end: 10_000 },
      variants: weights.map((w, i) => ({ key: `v${i}`, weight: w / 100 })),
    });
    const units = Array.from({ length: 2000 }, (_, i) => `unit-${i}`);
    fc.assert(
      fc.property(
        weightsArb.chain((before) => fc.tuple(fc.constant(before), fc.shuffledSubarray(before, { minLength: before.length, maxLength: before.length }))),
        ([beforeH, afterH]) => {
          const before = experiment(beforeH);
          const after = experiment(afterH);
          const moves = rampMoves(before.variants, after.variants);
          const snapshot = (e: ReturnType<typeof experiment>): AssignableConfig => ({ routes: { r: {} }, experiments: [e] });
          const a = snapshot(before);
          const b = snapshot(after);
          for (const u of units) {
            const from = assign(a, 'r', u).assignments[0]!.variant;
            const to = assign(b, 'r', u).assignments[0]!.variant;
            const vb = bucket(`ramp-exp:s1:${u}`);
            const move = moves.find((m) => m.start <= vb && vb < m.end);
            if (from === to) expect(move).toBeUndefined();
            else expect(move).toMatchObject({ from, to });
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('lays variants out in order over cumulative hundredths', () => {
    expect(variantRanges([{ key: 'c', weight: 33.33 }, { key: 't', weight: 66.67 }])).toEqual([
      { key: 'c', start: 0, end: 3333 },
      { key: 't', start: 3333, end: 10_000 },
    ]);
    expect(rampMoves([{ key: 'c', weight: 50 }, { key: 't', weight: 50 }], [{ key: 'c', weight: 30 }, { key: 't', weight: 70 }])).toEqual([
      { from: 'c', to: 't', start: 3000, end: 5000 },
    ]);
  });
});

describe('experiment form', () => {
  it('turns a filled form into a definition the core schema accepts', () => {
    const f = emptyForm(['error_rate', 'latency_ms', 'ctr']);
    Object.assign(f, { key: 'ranker-v2', name: 'Ranker v2', route: 'recommend', layer: 'ranking', trafficPercent: '40', primary: 'ctr', overridesText: 'qa-1 = treatment\n' });
    f.targeting = [
      { attribute: 'country', op: 'in', valueText: 'JP, US, "42"', exists: true },
      { attribute: 'age', op: 'gte', valueText: '18', exists: true },
      { attribute: 'beta', op: 'exists', valueText: '', exists: false },
    ];
    f.variants[1].paramsText = '{"version": "2", "blend": [0.3, 0.7]}';
    f.weights = [2500, 7500];
    const { definition, errors } = toDefinition(f);
    expect(errors).toEqual({});
    const parsed = ExperimentDefinition.parse(definition);
    expect(parsed.targeting).toEqual([
      { attribute: 'country', op: 'in', value: ['JP', 'US', '42'] },
      { attribute: 'age', op: 'gte', value: 18 },
      { attribute: 'beta', op: 'exists', value: false },
    ]);
    expect(parsed.variants.map((v) => v.weight)).toEqual([25, 75]);
    expect(parsed.variants[1]!.params).toEqual({ version: '2', blend: [0.3, 0.7] });
    expect(parsed.overrides).toEqual({ 'qa-1': 'treatment' });
    expect(parsed.metrics).toEqual({ primary: 'ctr', guardrails: ['error_rate', 'latency_ms'] });
    expect(parsed.analysis).toBeUndefined();
  });

  it('sends secondary metrics and a correction, and keeps analysis settings it does not edit', () => {
    const e = {
      key: 'x', route: 'r', layer: 'x', trafficPercent: 100, salt: '', targeting: [], overrides: {}, status: 'draft', version: 1,
      variants: [{ key: 'a', weight: 50, params: {} }, { key: 'b', weight: 50, params: {} }],
      metrics: { primary: 'ctr', secondary: ['dwell'], guardrails: ['error_rate'] },
      analysis: { correction: 'bh', preWindowDays: 7 },
    };
    const f = formFromExperiment(e);
    expect([f.secondary, f.correction]).toEqual([['dwell'], 'bh']);
    f.correction = 'holm';
    f.secondary = ['dwell', 'revenue'];
    const parsed = ExperimentDefinition.parse(toDefinition(f).definition);
    expect(parsed.metrics).toEqual({ primary: 'ctr', secondary: ['dwell', 'revenue'], guardrails: ['error_rate'] });
    expect(parsed.analysis).toEqual({ correction: 'holm', preWindowDays: 7 });
    f.correction = 'none';
    expect(ExperimentDefinition.parse(toDefinition(f).definition).analysis).toEqual({ preWindowDays: 7 });
  });

  it('edits the slice attributes as a comma-separated list, and drops an empty one', () => {
    const e = {
      key: 'x', route: 'r', layer: 'x', trafficPercent: 100, salt: '', targeting: [], overrides: {}, status: 'draft', version: 1,
      variants: [{ key: 'a', weight: 50, params: {} }, { key: 'b', weight: 50, params: {} }],
      metrics: { primary: 'ctr', guardrails: [] },
      analysis: { sliceBy: ['country', 'platform'], preWindowDays: 7 },
    };
    const f = formFromExperiment(e);
    expect(f.sliceByText).toBe('country, platform');
    f.sliceByText = ' platform ,, tier ';
    expect(ExperimentDefinition.parse(toDefinition(f).definition).analysis).toEqual({ sliceBy: ['platform', 'tier'], preWindowDays: 7 });
    f.sliceByText = ' ';
    expect(ExperimentDefinition.parse(toDefinition(f).definition).analysis).toEqual({ preWindowDays: 7 });
  });

  it('keeps an interleaving experiment one when edited, and sends A/B as the default', () => {
    const e = {
      key: 'x', route: 'rank', layer: 'x', trafficPercent: 100, salt: '', targeting: [], overrides: {}, status: 'draft', version: 1, design: 'interleave',
      variants: [{ key: 'v1', weight: 50, params: {} }, { key: 'v2', weight: 50, params: { version: 'v2' } }],
      metrics: { guardrails: [] },
    };
    const f = formFromExperiment(e);
    expect(f.design).toBe('interleave');
    expect(ExperimentDefinition.parse(toDefinition(f).definition).design).toBe('interleave');
    f.design = 'ab';
    expect(toDefinition(f).definition.design).toBeUndefined();
    expect(emptyForm().design).toBe('ab');
  });

  it('round-trips an experiment through the form, keeping its allocation', () => {
    const e = {
      key: 'x', name: 'X', route: 'r', layer: 'l', trafficPercent: 30, allocation: { start: 100, end: 3100 }, salt: '',
      targeting: [{ attribute: 'country', op: 'in', value: ['JP', '1'] }],
      variants: [{ key: 'a', weight: 33.33, params: { v: 1 } }, { key: 'b', weight: 66.67, params: {} }],
      overrides: {}, metrics: { guardrails: [] }, status: 'running', version: 3,
    };
    const { definition, errors } = toDefinition(formFromExperiment(e));
    expect(errors).toEqual({});
    expect(definition).toMatchObject({ key: 'x', layer: 'l', trafficPercent: 30, allocation: { start: 100, end: 3100 }, targeting: e.targeting });
    expect(definition.variants).toEqual([{ key: 'a', weight: 33.33, params: { v: 1 } }, { key: 'b', weight: 66.67, params: {} }]);
  });

  it('names bad JSON parameters and numbers before anything is sent', () => {
    const f = emptyForm();
    f.variants[0].paramsText = '{"version": }';
    f.variants[1].paramsText = '[1, 2]';
    f.targeting = [{ attribute: 'age', op: 'gt', valueText: 'old', exists: true }];
    const { errors } = toDefinition(f);
    expect(Object.keys(errors).sort()).toEqual(['targeting.0.value', 'variants.0.params', 'variants.1.params']);
    expect(parseParams('{"a": 1}')).toEqual({ value: { a: 1 } });
    expect(parseList('"a,b", c, 3')).toEqual(['a,b', 'c', 3]);
  });

  it('puts each server message at the closest rendered field', () => {
    const fields = new Set(['variants', 'variants.1.params', 'key']);
    expect(fieldFor('variants.1.params.version', fields)).toBe('variants.1.params');
    expect(fieldFor('variants.3.weight', fields)).toBe('variants');
    expect(fieldFor('key', fields)).toBe('key');
    expect(fieldFor('(body)', fields)).toBeNull();
  });
});

describe('lift time series', () => {
  it('reads comparisons per point', () => {
    const s = liftSeries(
      { points: [{ ts: '2026-01-01T00:01:00Z', comparisons: [{ variant: 't', relLift: 0.1, relCi95: [0, 0.2] }] }, { ts: '2026-01-01T00:00:00Z', comparisons: [] }] },
      ['c', 't'],
    );
    expect(s).toEqual([{ variant: 't', index: 1, points: [{ t: Date.parse('2026-01-01T00:01:00Z'), lift: 0.1, lo: 0, hi: 0.2 }] }]);
  });

  it('asks for an interval giving at most about 60 points since the start', () => {
    const start = '2026-01-01T00:00:00Z';
    const at = (ms: number) => Date.parse(start) + ms;
    expect(chooseInterval(start, at(20_000))).toBe('1s');
    expect(chooseInterval(start, at(10 * 60_000))).toBe('10s');
    expect(chooseInterval(start, at(2 * 86_400_000))).toBe('1h'); // 48 points
    expect(chooseInterval(start, at(3 * 86_400_000))).toBe('3h'); // 1h would give 72
    expect(chooseInterval(undefined, at(0))).toBeUndefined();
  });

  it('computes lift from per-variant figures when the point has no comparison', () => {
    const r = relativeLift({ mean: 0.1, variance: 0.09, units: 1000 }, { mean: 0.12, variance: 0.1056, units: 1000 });
    expect(r.lift).toBeCloseTo(0.2, 10);
    expect(r.lo!).toBeLessThan(0.2);
    expect(r.hi!).toBeGreaterThan(0.2);
    expect(relativeLift({ mean: 0, variance: 0, units: 10 }, { mean: 1, variance: 0, units: 10 }).lift).toBeNull();
  });
});

describe('which routes serve a model (the Models page)', () => {
  const routes = [
    { key: 'recommend', path: '/v1/models/recommend/predict', defaultParams: { version: 'v1' } },
    { key: 'recommend-beta', path: '/v1/models/recommend-beta/predict', defaultParams: {} },
    { key: 'by-param', path: '/score', defaultParams: { model: 'recommend', version: 2 } },
    { key: 'other', path: '/v1/models/other', defaultParams: { model: 'other' } },
  ];
  it('takes routes whose path calls the model or whose defaults name it, and no model whose name merely starts the same', () => {
    expect(routesServing(routes, 'recommend').map((r) => r.key)).toEqual(['recommend', 'by-param']);
    expect(routesServing(routes, 'other').map((r) => r.key)).toEqual(['other']);
    expect(routesServing(routes, 'rec.mmend')).toEqual([]);
  });
  it("reads the route's default version when it names one", () => {
    expect(routes.map(defaultVersion)).toEqual(['v1', undefined, '2', undefined]);
  });
});
