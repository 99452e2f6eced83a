import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, createError, parseOrThrow, ExperimentDefinition } from '../src/index.ts';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Map(
  [...doc.matchAll(/^\| `(BUNRYU_[A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])] as const),
);

describe('error catalogue', () => {
  it('documents every code with its status, and documents no code that does not exist', () => {
    const catalogue = new Map(Object.entries(ERROR_CATALOGUE).map(([code, e]) => [code, e.status] as const));
    expect(documented).toEqual(catalogue);
  });

  it('builds the SPEC error body', () => {
    expect(createError('BUNRYU_NOT_FOUND', 'no experiment "x"').toBody()).toEqual({
      error: { code: 'BUNRYU_NOT_FOUND', message: 'no experiment "x"' },
    });
  });

  it('names the invalid field in a validation error', () => {
    const bad = { key: 'ok', route: 'r', variants: [{ key: 'a', weight: 50 }, { key: 'b', weight: 'x' }] };
    let caught: unknown;
    try {
      parseOrThrow(ExperimentDefinition, bad);
    } catch (e) {
      caught = e;
    }
    const err = caught as ReturnType<typeof createError>;
    expect(err.statusCode).toBe(400);
    expect(err.message).toMatch(/^variants\.1\.weight: /);
    expect(err.details).toEqual({ fields: [expect.objectContaining({ path: 'variants.1.weight' })] });
  });
});
