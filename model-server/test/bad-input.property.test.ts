import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModelCopy, instance, removeTempDirs, startApp, type TestApp } from './support/models.ts';

/**
 * Predict requests with instances and `x-ab-params` of every shape, valid or not: a 200 scores
 * every instance with a probability, anything else is a 4xx naming a field; never a 5xx, and
 * never a fallback, since no model failed.
 */

let t: TestApp;

beforeAll(async () => {
  t = await startApp(await demoModelCopy());
});
afterAll(async () => {
  await t.close();
  await removeTempDirs();
});

const FEATURES = ['user_affinity', 'item_popularity', 'recency', 'price', 'position'];

const featureValue = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, '5', true, [], {}, 'NaN', 1e308) },
);

const instanceArb = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fc.subarray(FEATURES), fc.array(featureValue, { minLength: 5, maxLength: 5 }), fc.boolean()).map(([dropped, values, extra]) => {
    const x: Record<string, unknown> = instance(Object.fromEntries(FEATURES.map((f, i) => [f, values[i]])));
    // Mostly whole instances; some miss features, some carry ones no model reads.
    if (dropped.length < 2) for (const f of dropped) delete x[f];
    if (extra) x.other = 'ignored';
    return x as unknown;
  }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, 3, 'x', [1, 2]) },
);

const paramsArb = fc.option(
  fc.oneof(
    fc.record(
      {
        version: fc.constantFrom<unknown>('v1', 'v2', '1', '2', 'v9', 2, null, ''),
        blend: fc.oneof(fc.double({ min: -0.5, max: 1.5, noNaN: true }), fc.constantFrom<unknown>('0.5', 'half', true, null)),
        blendWith: fc.constantFrom<unknown>('v1', 'v2', 'v7', 3),
        model: fc.constantFrom<unknown>('recommend', 'nope', 5),
      },
      { requiredKeys: [] },
    ).map((p) => JSON.stringify(p)),
    fc.constantFrom('not json', '[1,2]', '"v2"', '{', 'null'),
  ),
  { nil: undefined },
);

describe('predict with any instances and params', () => {
  it('scores every instance or names a field in a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(instanceArb, { maxLength: 6 }), paramsArb, async (instances, params) => {
        const res = await t.app.inject({
          method: 'POST',
          url: '/v1/models/recommend/predict',
          headers: params === undefined ? {} : { 'x-ab-params': params },
          payload: { instances },
        });
        expect(res.statusCode, res.body).toBeLessThan(500);
        expect(res.headers['x-model-fallback']).toBeUndefined();
        if (res.statusCode === 200) {
          const body = res.json<{ predictions: number[] }>();
          expect(body.predictions).toHaveLength(instances.length);
          for (const p of body.predictions) expect(p >= 0 && p <= 1).toBe(true);
          return;
        }
        const { error } = res.json<{ error: { code: string; message: string; details?: { fields?: { path: string }[] } } }>();
        // An unknown model is a 404 that names it; everything else names its field.
        if (res.statusCode === 404) {
          expect(error.message).toMatch(/"[^"]+"/);
          return;
        }
        expect(res.statusCode).toBe(400);
        const paths = (error.details?.fields ?? []).map((f) => f.path);
        expect(paths.length, res.body).toBeGreaterThan(0);
        for (const p of paths) expect(p).toMatch(/^(instances(\.\d+(\.\w+)?)?|x-ab-params(\.\w+)?)$/);
      }),
      { numRuns: 1000 },
    );
  });
});
