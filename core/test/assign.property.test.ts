import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assign, assignForwarding, exposureEvent, formatAssignmentsHeader, type AssignableConfig, type AssignableExperiment, type TargetingRule } from '../src/index.ts';

const experiment = (over: Partial<AssignableExperiment>): AssignableExperiment => ({
  key: 'exp',
  route: 'r',
  status: 'running',
  allocation: { start: 0, end: 10000 },
  variants: [
    { key: 'control', weight: 50, params: { v: 'a' } },
    { key: 'treatment', weight: 50, params: { v: 'b' } },
  ],
  ...over,
});
const config = (...experiments: AssignableExperiment[]): AssignableConfig => ({ routes: { r: { defaultParams: {} } }, experiments });
const units = (n: number, prefix = 'unit-') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('assignment properties', () => {
  it('splits 100k units within tolerance of the weights', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 99 }), fc.string({ maxLength: 8 }), (treatmentWeight, salt) => {
        const c = config(experiment({ salt, variants: [{ key: 'control', weight: 100 - treatmentWeight }, { key: 'treatment', weight: treatmentWeight }] }));
        let treated = 0;
        const n = 100_000;
        for (const u of units(n)) if (assign(c, 'r', u).assignments[0]?.variant === 'treatment') treated++;
        const p = treatmentWeight / 100;
        // 5 standard deviations: a failure here is a broken hash, not bad luck.
        expect(Math.abs(treated / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n) + 1e-4);
      }),
      { numRuns: 8 },
    );
  });

  it('ramping weight from control to treatment never moves a unit back to control', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 1, max: 100 }), (from, step) => {
        const to = Math.min(100, from + step);
        const at = (w: number) => config(experiment({ variants: [{ key: 'control', weight: 100 - w }, { key: 'treatment', weight: w }] }));
        const before = at(from);
        const after = at(to);
        for (const u of units(3000)) {
          const b = assign(before, 'r', u).assignments[0]?.variant;
          const a = assign(after, 'r', u).assignments[0]?.variant;
          if (b === 'treatment') expect(a).toBe('treatment');
        }
      }),
      { numRuns: 30 },
    );
  });

  it('experiments sharing a layer never both assign a unit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9999 }), fc.integer({ min: 0, max: 9999 }), (split, end) => {
        const c = config(
          experiment({ key: 'a', layer: 'shared', allocation: { start: 0, end: split } }),
          experiment({ key: 'b', layer: 'shared', allocation: { start: split, end: Math.max(split + 1, end) } }),
        );
        for (const u of units(2000)) expect(assign(c, 'r', u).assignments.length).toBeLessThanOrEqual(1);
      }),
      { numRuns: 30 },
    );
  });

  it('is sticky: the same unit always gets the same variant', () => {
    const c = config(experiment({}));
    for (const u of units(500)) expect(assign(c, 'r', u)).toEqual(assign(c, 'r', u));
  });

  it('forced overrides apply and are marked forced', () => {
    const c = config(experiment({ overrides: { 'qa-1': 'treatment' } }));
    expect(assign(c, 'r', 'qa-1').assignments).toEqual([{ experiment: 'exp', variant: 'treatment', forced: true }]);
  });

  it('paused and rolled-back experiments affect nothing', () => {
    for (const status of ['paused', 'rolled_back', 'draft', 'archived'] as const) {
      const c = config(experiment({ status }));
      expect(assign(c, 'r', 'u').assignments).toEqual([]);
      expect(assign(c, 'r', 'u').params).toEqual({});
    }
  });

  it('a variant upstream overrides the route upstream', () => {
    const c = config(experiment({ variants: [{ key: 'control', weight: 0 }, { key: 'treatment', weight: 100, upstream: 'http://b:1' }] }));
    expect(assign(c, 'r', 'u').upstream).toBe('http://b:1');
  });
});

describe('PrefixHasher', () => {
  it('equals the murmurhash package on prefix + unit for any strings', async () => {
    const { PrefixHasher, hashPrefix, murmur3 } = await import('../src/index.ts');
    const hasher = new PrefixHasher();
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 80 }), (prefix, unit) => {
        hasher.setUnit(unit);
        expect(hasher.hash(hashPrefix(prefix))).toBe(murmur3(prefix + unit));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('assignForwarding', () => {
  // Keys that meet across sources, array indexes (which objects enumerate first) and text beyond ASCII.
  const key = fc.constantFrom('model', 'version', 'k', 'é', '0', '7', '10', 'x-y');
  const value = fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.boolean(), fc.constant(null), fc.constantFrom('日本', '💡', '\u007f'), fc.array(fc.integer(), { maxLength: 2 }));
  const params = fc.dictionary(key, value, { maxKeys: 4 });
  const targeting = fc.option(fc.constant<TargetingRule[]>([{ attribute: 'country', op: 'in', value: ['JP'] }]), { nil: undefined });
  const experimentArb = (i: number) =>
    fc.record({
      layer: fc.constantFrom('a', 'b', `own-${i}`),
      start: fc.integer({ min: 0, max: 5000 }),
      status: fc.constantFrom('running' as const, 'running' as const, 'released' as const, 'paused' as const),
      targeting,
      control: params,
      treatment: params,
      upstream: fc.option(fc.constant(`http://variant-${i}`), { nil: undefined }),
      forced: fc.boolean(),
    }).map(
      (x): AssignableExperiment => ({
        key: `exp-${i}`,
        route: 'r',
        layer: x.layer,
        status: x.status,
        allocation: { start: x.start, end: 10000 },
        targeting: x.targeting,
        variants: [
          { key: 'control', weight: 50, params: x.control },
          { key: 'treatment', weight: 50, params: x.treatment, upstream: x.upstream },
        ],
        overrides: x.forced ? { 'unit-3': 'treatment' } : {},
        releasedVariant: 'treatment',
        releasedAt: `2026-01-0${(i % 9) + 1}T00:00:00.000Z`,
      }),
    );
  const configArb = fc
    .tuple(params, fc.integer({ min: 0, max: 5 }), fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }))
    .chain(([defaults, n, holdout]) =>
      fc.tuple(...Array.from({ length: n }, (_, i) => experimentArb(i))).map(
        (experiments): AssignableConfig => ({ routes: { r: { defaultParams: defaults } }, experiments, holdout: holdout === undefined ? null : { percent: holdout } }),
      ),
    );
  const ascii = (json: string) => json.replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));

  it('gives the params of assign() as the same JSON text, in ASCII, and the same assignments', () => {
    fc.assert(
      fc.property(configArb, fc.constantFrom({}, { country: 'JP' }), (c, attributes) => {
        for (const unit of units(12)) {
          const { params, ...rest } = assign(c, 'r', unit, attributes);
          const { paramsJson, assignmentsHeader, exposureAssignmentsJson, ...forwarding } = assignForwarding(c, 'r', unit, attributes);
          expect(paramsJson).toBe(ascii(JSON.stringify(params)));
          expect(paramsJson).toMatch(/^[\x20-\x7e]*$/);
          expect(forwarding).toEqual(rest);
          expect(assignmentsHeader).toBe(formatAssignmentsHeader(rest.assignments));
          const exposed = exposureEvent(rest.assignments, { unitId: unit, route: 'r', requestId: 'q', ts: 0 }, 'e')?.assignments;
          expect(exposureAssignmentsJson).toBe(exposed === undefined ? null : JSON.stringify(exposed));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('knows no params on a route it has not been told of', () => {
    expect(assignForwarding(config(experiment({})), 'elsewhere', 'u')).toEqual({
      assignments: [],
      paramsJson: '{}',
      assignmentsHeader: '',
      exposureAssignmentsJson: null,
      holdout: false,
    });
  });
});
