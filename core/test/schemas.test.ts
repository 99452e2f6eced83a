import { describe, expect, it } from 'vitest';
import { ExperimentDefinition, Event, MetricDefinition, RouteInput, parseEnv, baseEnv, port } from '../src/index.ts';
import { z } from 'zod';

const valid = {
  key: 'ranker-v2',
  name: 'Ranker v2 against v1',
  hypothesis: 'v2 lifts CTR by 2%',
  route: 'recommend',
  layer: 'ranking',
  trafficPercent: 100,
  salt: '',
  targeting: [{ attribute: 'country', op: 'in', value: ['JP', 'US'] }],
  variants: [
    { key: 'control', weight: 50, params: { version: '1' } },
    { key: 'treatment', weight: 50, params: { version: '2' } },
  ],
  overrides: { 'qa-user-1': 'treatment' },
  metrics: { primary: 'ctr', guardrails: ['error_rate', 'latency_ms'] },
};

const paths = (r: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } }) =>
  r.error?.issues.map((i) => i.path.join('.')) ?? [];

describe('ExperimentDefinition', () => {
  it('accepts the SPEC example', () => {
    expect(ExperimentDefinition.safeParse(valid).success).toBe(true);
  });
  it('accepts weights with two decimals summing to exactly 100', () => {
    const v = { ...valid, variants: [33.33, 33.33, 33.34].map((weight, i) => ({ key: `v${i}`, weight })), overrides: {} };
    expect(ExperimentDefinition.safeParse(v).success).toBe(true);
  });
  it.each([
    ['weights not summing to 100', { variants: [{ key: 'a', weight: 50 }, { key: 'b', weight: 49.99 }], overrides: {} }, 'variants'],
    ['three decimals', { variants: [{ key: 'a', weight: 50.001 }, { key: 'b', weight: 49.999 }], overrides: {} }, 'variants.0.weight'],
    ['bad key', { key: 'Ranker V2' }, 'key'],
    ['unknown field', { colour: 'red' }, ''],
    ['override to an unknown variant', { overrides: { u: 'nope' } }, 'overrides.u'],
    ['duplicate variant', { variants: [{ key: 'a', weight: 50 }, { key: 'a', weight: 50 }], overrides: {} }, 'variants.1.key'],
    ['gt with a string', { targeting: [{ attribute: 'age', op: 'gt', value: '3' }] }, 'targeting.0.value'],
    ['in without an array', { targeting: [{ attribute: 'c', op: 'in', value: 'JP' }] }, 'targeting.0.value'],
    ['one variant', { variants: [{ key: 'a', weight: 100 }], overrides: {} }, 'variants'],
  ])('rejects %s, naming the field', (_name, patch, path) => {
    const r = ExperimentDefinition.safeParse({ ...valid, ...patch });
    expect(r.success).toBe(false);
    expect(paths(r)).toContain(path);
  });
});

describe('RouteInput', () => {
  it('fills defaults', () => {
    expect(RouteInput.parse({ upstream: 'http://127.0.0.1:8082' })).toEqual({
      upstream: 'http://127.0.0.1:8082', path: '/', defaultParams: {}, timeoutMs: 1000,
    });
  });
  it('rejects a non-http upstream', () => {
    expect(paths(RouteInput.safeParse({ upstream: 'ftp://x' }))).toContain('upstream');
  });
  it('accepts a fixed-body fallback', () => {
    expect(RouteInput.safeParse({ upstream: 'http://a:1', fallback: { body: { predictions: [] } } }).success).toBe(true);
  });
  it('rejects fallback headers that could not go out as they are', () => {
    const fallback = (headers: Record<string, string>) => RouteInput.safeParse({ upstream: 'http://a:1', fallback: { body: null, headers } });
    expect(fallback({ 'x-served-by': 'fallback; v=1' }).success).toBe(true);
    expect(fallback({ 'x-a': 'ok\r\nset-cookie: evil=1' }).success).toBe(false);
    expect(fallback({ 'bad name': 'v' }).success).toBe(false);
  });
});

describe('MetricDefinition', () => {
  it.each([
    { type: 'proportion', event: 'click' },
    { type: 'mean', event: 'dwell' },
    { type: 'ratio', numerator: { event: 'click' }, denominator: { event: 'impression' } },
    { type: 'ratio', numerator: { event: 'purchase', field: 'value' }, denominator: { event: 'session' } },
  ])('accepts %j', (m) => expect(MetricDefinition.safeParse(m).success).toBe(true));
  it('rejects an unknown type', () => expect(paths(MetricDefinition.safeParse({ type: 'median', event: 'x' }))).toContain('type'));
});

describe('Event', () => {
  const e = { eventId: '7d444840-9dc0-11d1-b245-5ffdce74fad2', type: 'click', ts: 1763800000000, unitId: 'u-1' };
  it('accepts the SPEC shape', () => expect(Event.parse(e).assignments).toEqual([]));
  it('rejects a bad type name', () => expect(paths(Event.safeParse({ ...e, type: 'Click!' }))).toContain('type'));
  it('rejects a non-uuid id', () => expect(paths(Event.safeParse({ ...e, eventId: '1' }))).toContain('eventId'));
});

describe('parseEnv', () => {
  const schema = z.object({ ...baseEnv, PORT: port(8080), N: z.coerce.number().int() });
  it('reports every bad variable in one message', () => {
    expect(() => parseEnv(schema, { PORT: 'abc', N: 'x' })).toThrow(/PORT: .*; N: /);
  });
  it('freezes the defaults-filled result and treats empty strings as unset', () => {
    const c = parseEnv(schema, { PORT: '', N: '3' });
    expect(c.PORT).toBe(8080);
    expect(c.BUNRYU_DATA_DIR).toBe('./data');
    expect(Object.isFrozen(c)).toBe(true);
  });
});
