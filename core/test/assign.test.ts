import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assign, bucket, murmur3, type AssignableConfig } from '../src/index.ts';

interface Vectors {
  hashes: { input: string; murmur3: number; bucket: number }[];
  suites: {
    config: AssignableConfig;
    cases: { route: string; unitId: string; attributes: Record<string, unknown>; expected: unknown }[];
  }[];
}

const vectors: Vectors = JSON.parse(readFileSync(new URL('../test-vectors/assignment.json', import.meta.url), 'utf8'));

describe('hash vectors', () => {
  it.each(vectors.hashes)('murmur3($input) = $murmur3, bucket $bucket', ({ input, murmur3: h, bucket: b }) => {
    expect(murmur3(input)).toBe(h);
    expect(bucket(input)).toBe(b);
  });
});

describe.each(vectors.suites.map((s, i) => [i, s] as const))('assignment suite %i', (_i, suite) => {
  it.each(suite.cases)('$route / $unitId', (c) => {
    expect(assign(suite.config, c.route, c.unitId, c.attributes)).toEqual(c.expected);
  });
});

it('runs every vector (25 suites × 60 cases, 30 hashes)', () => {
  expect(vectors.suites.reduce((n, s) => n + s.cases.length, 0)).toBeGreaterThanOrEqual(1500);
  expect(vectors.hashes.length).toBeGreaterThanOrEqual(30);
});
