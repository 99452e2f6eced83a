import fc from 'fast-check';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, definition, seed, startApp, storeFixture, type StoreFixture, type TestApp } from './support/service.ts';

/**
 * SPEC §8: "Bad input anywhere → 4xx with a message naming the field; nothing partially
 * applied." Valid bodies with one thing broken somewhere (a value of the wrong kind, out of
 * range, a field dropped or added) are sent to every writing endpoint: the answer is a success
 * or a 4xx that names a field, never a 5xx, and a refused request changes nothing, the audit log
 * included.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path to a value inside `value` (the root excluded). */
function paths(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') return [];
  const entries: [string | number, Json][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return entries.flatMap(([k, v]) => [[...prefix, k], ...paths(v, [...prefix, k])]);
}

const oddValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1.5, 1e9, -1e9, 100.0001, '', ' ', 'x'.repeat(300), 'BAD KEY!', '\u0000', [], {}, [1, 'a'], { a: 1 }),
  fc.string({ maxLength: 10 }),
  fc.integer({ min: -1000, max: 100_000 }),
);

type Mutation = { kind: 'set'; at: number; value: Json } | { kind: 'drop'; at: number } | { kind: 'add'; at: number; name: string; value: Json };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: oddValue }),
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('add' as const), at: fc.nat(), name: fc.stringMatching(/^[a-zA-Z_]{1,10}$/), value: oddValue }),
);

/** `body` with the mutation applied at one of its paths (chosen by `at`); objects keep being objects at the root. */
function mutate(body: Json, m: Mutation): Json {
  const copy = structuredClone(body) as Json;
  const all = paths(copy);
  if (m.kind === 'add') {
    const containers = [[], ...all].filter((p) => {
      const v = get(copy, p);
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    });
    const target = get(copy, containers[m.at % containers.length]!) as Record<string, Json>;
    if (!(m.name in target)) target[m.name] = m.value;
    return copy;
  }
  if (all.length === 0) return copy;
  const path = all[m.at % all.length]!;
  const parent = get(copy, path.slice(0, -1)) as Record<string, Json> | Json[];
  const last = path.at(-1)!;
  if (m.kind === 'set') (parent as Record<string | number, Json>)[last] = m.value;
  else if (Array.isArray(parent)) parent.splice(last as number, 1);
  else delete parent[last as string];
  return copy;
}

function get(value: Json, path: (string | number)[]): Json {
  let v = value;
  for (const k of path) v = (v as Record<string | number, Json>)[k]!;
  return v;
}

interface ErrorJson {
  error: { code: string; message: string; details?: { fields?: { path: string; message: string }[] } };
}

describe('bad input to the experiment-service', () => {
  let fixture: StoreFixture;
  let t: TestApp;
  let app: FastifyInstance;
  let n = 0;

  beforeAll(async () => {
    fixture = await storeFixture('file', undefined);
    t = await startApp(fixture);
    app = t.app;
    await seed(app);
  });
  afterAll(async () => {
    await t?.close();
    await fixture?.cleanup();
  });

  const send = (method: 'POST' | 'PUT', url: string, payload: Json, headers: Record<string, string> = {}) =>
    app.inject({ method, url, headers: { ...bearer('admin'), ...headers, 'content-type': 'application/json' }, payload: JSON.stringify(payload) });

  /** Everything a refused request must leave as it was. */
  const state = async () => {
    const read = async (url: string) => (await app.inject({ method: 'GET', url, headers: bearer('admin') })).body;
    return Promise.all([read('/v1/experiments'), read('/v1/routes'), read('/v1/metrics'), read('/v1/audit?limit=1000'), read('/v1/config')]);
  };

  /** A success, or a 4xx whose message names a field; never a 5xx. A 4xx changed nothing. */
  async function checkAnswer(r: LightMyRequestResponse, before: string[], body: Json) {
    expect(r.statusCode, `${r.statusCode} for ${JSON.stringify(body)}: ${r.body}`).toBeLessThan(500);
    if (r.statusCode < 400) return;
    const { error } = r.json<ErrorJson>();
    const fields = error.details?.fields ?? [];
    // The field is named in the details, or at least in the message (a conflict names what it conflicts with).
    expect(fields.length > 0 || /"[^"]+"|\b[a-z]+[A-Z.][A-Za-z.]*\b|\b(key|route|layer|variant|weights|status|version)\b/.test(error.message), r.body).toBe(true);
    for (const f of fields) expect(f.message.length).toBeGreaterThan(0);
    expect(await state()).toEqual(before);
  }

  it('creating an experiment', async () => {
    await fc.assert(
      fc.asyncProperty(mutationArb, async (m) => {
        const body = mutate(definition({ key: `exp-${++n}`, layer: `layer-${n}` }) as unknown as Json, m);
        const before = await state();
        await checkAnswer(await send('POST', '/v1/experiments', body), before, body);
      }),
      { numRuns: 150 },
    );
  });

  it('editing an experiment', async () => {
    const created = await send('POST', '/v1/experiments', definition({ key: 'edited', layer: 'edited' }) as unknown as Json);
    expect(created.statusCode).toBe(201);
    await fc.assert(
      fc.asyncProperty(mutationArb, async (m) => {
        const current = (await app.inject({ method: 'GET', url: '/v1/experiments/edited', headers: bearer('admin') })).json<{ version: number }>();
        const body = mutate(definition({ key: 'edited', layer: 'edited' }) as unknown as Json, m);
        const before = await state();
        await checkAnswer(await send('PUT', '/v1/experiments/edited', body, { 'if-match': `"${current.version}"` }), before, body);
      }),
      { numRuns: 100 },
    );
  });

  it('ramping and promoting a running experiment', async () => {
    const created = await send('POST', '/v1/experiments', definition({ key: 'ramped', layer: 'ramped', variants: [
      { key: 'control', weight: 50, params: { version: '1' } },
      { key: 'treatment', weight: 50, params: { version: '2' } },
    ] }) as unknown as Json);
    expect(created.statusCode).toBe(201);
    expect((await send('POST', '/v1/experiments/ramped/start', {})).statusCode).toBe(200);
    await fc.assert(
      fc.asyncProperty(mutationArb, fc.boolean(), async (m, ramp) => {
        const body = ramp ? mutate({ weights: { control: 60, treatment: 40 } }, m) : mutate({ variant: 'treatment' }, m);
        // A promotion that goes through ends the experiment: only refused ones are sent.
        if (!ramp && JSON.stringify(body) === '{"variant":"treatment"}') return;
        const before = await state();
        await checkAnswer(await send('POST', `/v1/experiments/ramped/${ramp ? 'ramp' : 'promote'}`, body), before, body);
      }),
      { numRuns: 100 },
    );
  });

  it('putting a route and a metric', async () => {
    const route: Json = { upstream: 'http://127.0.0.1:9/predict', path: '/v1/models/x/predict', defaultParams: { version: '1' }, timeoutMs: 500, fallback: { status: 200, body: { ok: true }, headers: { 'x-fallback': 'yes' } } };
    const metric: Json = { type: 'mean', event: 'purchase', description: 'Revenue per unit' };
    await fc.assert(
      fc.asyncProperty(mutationArb, fc.boolean(), async (m, isRoute) => {
        const body = mutate(isRoute ? route : metric, m);
        const before = await state();
        await checkAnswer(await send('PUT', isRoute ? `/v1/routes/r-${++n}` : `/v1/metrics/m-${++n}`, body), before, body);
      }),
      { numRuns: 100 },
    );
  });
});
