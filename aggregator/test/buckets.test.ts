import { describe, expect, it } from 'vitest';
import { OPEN_END } from '../src/metrics-store/metrics-store.ts';
import { AUTO_POINTS, MAX_POINTS, formatInterval, parseInterval, planBuckets } from '../src/results/buckets.ts';

const HOUR = 3_600_000;

describe('timeseries intervals', () => {
  it.each([
    ['60s', 60_000],
    ['15m', 900_000],
    ['1h', HOUR],
    ['2d', 2 * 24 * HOUR],
    ['1500ms', 1500],
  ])('parses %s', (text, ms) => {
    expect(parseInterval(text)).toBe(ms);
  });

  it.each(['', '1', 'h', '-1h', '0s', '999ms', '1w', '1.5h'])('refuses %j with a 400 naming interval', (text) => {
    expect(() => parseInterval(text)).toThrow(expect.objectContaining({ statusCode: 400, message: expect.stringMatching(/^interval:/) }));
  });

  it('formats widths back', () => {
    expect([60_000, 900_000, HOUR, 24 * HOUR, 1500].map(formatInterval)).toEqual(['1m', '15m', '1h', '1d', '1500ms']);
  });
});

describe('bucket plans', () => {
  it('picks the smallest standard width with at most AUTO_POINTS points, aligned to it, the last open-ended', () => {
    const firstTs = Date.UTC(2026, 10, 20, 9, 17);
    const plan = planBuckets({ firstTs, lastTs: firstTs + 10 * HOUR });
    expect(plan.step).toBe(15 * 60_000);
    expect(plan.labels.length).toBeLessThanOrEqual(AUTO_POINTS);
    expect(plan.labels[0]! % plan.step).toBe(0);
    expect(plan.labels[0]!).toBeGreaterThan(firstTs);
    expect(plan.labels.at(-1)!).toBeGreaterThan(firstTs + 10 * HOUR);
    expect(plan.ends.slice(0, -1)).toEqual(plan.labels.slice(0, -1));
    expect(plan.ends.at(-1)).toBe(OPEN_END);
  });

  it('gives one open bucket when everything happened at once', () => {
    expect(planBuckets({ firstTs: 1000, lastTs: 1000 })).toMatchObject({ ends: [OPEN_END] });
  });

  it('honours an asked width and refuses one giving more than MAX_POINTS points', () => {
    expect(planBuckets({ firstTs: 0, lastTs: 10 * HOUR - 1 }, HOUR).labels).toHaveLength(10);
    expect(() => planBuckets({ firstTs: 0, lastTs: (MAX_POINTS + 1) * 60_000 }, 60_000)).toThrow(/interval/);
  });
});
