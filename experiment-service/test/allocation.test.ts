import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Allocation } from '@bunryu/core';
import { firstFreeRange, overlaps } from '../src/experiments/allocation.ts';
import { findParamConflict } from '../src/experiments/param-conflicts.ts';
import { ALLOWED_FROM, LEADS_TO } from '@bunryu/core';

describe('firstFreeRange', () => {
  it('takes the lowest gap wide enough', () => {
    expect(firstFreeRange([], 3000)).toEqual({ start: 0, end: 3000 });
    expect(firstFreeRange([{ start: 0, end: 3000 }], 5000)).toEqual({ start: 3000, end: 8000 });
    expect(firstFreeRange([{ start: 1000, end: 2000 }, { start: 0, end: 500 }], 500)).toEqual({ start: 500, end: 1000 });
    expect(firstFreeRange([{ start: 1000, end: 2000 }, { start: 0, end: 500 }], 600)).toEqual({ start: 2000, end: 2600 });
    expect(firstFreeRange([{ start: 0, end: 6000 }], 5000)).toBeUndefined();
    expect(firstFreeRange([], 10_001)).toBeUndefined();
    expect(firstFreeRange([{ start: 0, end: 9999 }], 1)).toEqual({ start: 9999, end: 10_000 });
  });

  const range = fc.tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 1, max: 3000 })).map(([start, w]): Allocation => ({ start, end: Math.min(10_000, start + w) }));

  it('never overlaps a taken range, stays in 0..10000 and is the lowest such start', () => {
    fc.assert(
      fc.property(fc.array(range, { maxLength: 8 }), fc.integer({ min: 1, max: 10_000 }), (taken, width) => {
        const r = firstFreeRange(taken, width);
        const fits = (start: number) => start + width <= 10_000 && taken.every((t) => !overlaps(t, { start, end: start + width }));
        if (!r) {
          for (let s = 0; s + width <= 10_000; s++) if (fits(s)) return false;
          return true;
        }
        if (r.end - r.start !== width || !fits(r.start)) return false;
        for (let s = 0; s < r.start; s++) if (fits(s)) return false;
        return true;
      }),
      { numRuns: 200 },
    );
  });
});

describe('findParamConflict', () => {
  const exp = (key: string, layer: string, params: Record<string, unknown>[], status = 'running', route = 'r') =>
    ({ key, layer, route, status, variants: params.map((p, i) => ({ key: `v${i}`, weight: 50, params: p })) }) as never;

  it('names the first running experiment of another layer on the route that sets a same key', () => {
    const candidate = exp('c', 'l3', [{ a: 1 }, { b: 1 }]);
    const others = [
      exp('same-layer', 'l3', [{ a: 1 }]),
      exp('other-route', 'l1', [{ a: 1 }], 'running', 'elsewhere'),
      exp('paused', 'l1', [{ a: 1 }], 'paused'),
      exp('z-clash', 'l2', [{}, { b: 2 }]),
      exp('y-clash', 'l1', [{ a: 0 }]),
    ];
    expect(findParamConflict(candidate, others)).toEqual({ experiment: 'y-clash', param: 'a' });
    expect(findParamConflict(candidate, others.slice(0, 3))).toBeUndefined();
  });
});

describe('lifecycle table', () => {
  it('never leaves archived, and only pause/rollback/promote/archive lead out of running', () => {
    for (const from of Object.values(ALLOWED_FROM)) expect(from).not.toContain('archived');
    const outOfRunning = Object.entries(ALLOWED_FROM)
      .filter(([action, from]) => from.includes('running') && LEADS_TO[action as keyof typeof LEADS_TO])
      .map(([a]) => a)
      .sort();
    expect(outOfRunning).toEqual(['pause', 'promote', 'rollback']);
  });
});
