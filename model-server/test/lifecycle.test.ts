import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { VersionLifecycle } from '../src/lifecycle/versions.ts';
import { logisticRegressionOnnx } from '../src/onnx/logistic-regression-onnx.ts';
import { demoModelCopy, demoModels, instance, removeTempDirs, startApp, type TestApp } from './support/models.ts';

const open: TestApp[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});
afterAll(removeTempDirs);

async function start(): Promise<{ t: TestApp; dir: string; lifecycle: VersionLifecycle }> {
  const dir = await demoModelCopy();
  const t = await startApp(dir);
  open.push(t);
  return { t, dir, lifecycle: new VersionLifecycle(t.deps.registry) };
}

/** v2's model.json and a logistic regression on its features, with v2's weights unless given. */
async function candidate(over: { weights?: number[]; bias?: number; meta?: Record<string, unknown> } = {}) {
  const { dir } = await demoModels();
  const meta = { ...JSON.parse(await readFile(join(dir, 'recommend', 'v2', 'model.json'), 'utf8')), ...over.meta };
  const onnx = logisticRegressionOnnx({
    input: 'features',
    output: 'click_probability',
    features: meta.features,
    weights: over.weights ?? meta.logisticRegression.weights,
    bias: over.bias ?? meta.logisticRegression.bias,
  });
  return { onnx, meta: JSON.stringify(meta) };
}

async function predictWith(t: TestApp, version: string) {
  const res = await t.app.inject({ method: 'POST', url: '/v1/models/recommend/predict', headers: { 'x-ab-params': JSON.stringify({ version }) }, payload: { instances: [instance()] } });
  return { status: res.statusCode, version: res.headers['x-model-version'], fallback: res.headers['x-model-fallback'] };
}

/** Every file and folder under dir, for "nothing was written". */
async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort();
}

describe('registering a model version', () => {
  it('gates a good version, stores it ready with every gate and its figure, and serves it', async () => {
    const { t, dir, lifecycle } = await start();
    const v = await lifecycle.register({ name: 'recommend', version: 'v3', ...(await candidate()), actor: 'releaser-1' });
    expect(v).toMatchObject({ model: 'recommend', version: 'v3', status: 'ready', registeredBy: 'releaser-1' });
    expect(v.gates.map((g) => [g.name, g.passed])).toEqual([
      ['loads', true],
      ['features', true],
      ['smoke', true],
      ['latency', true],
      ['offline', true],
    ]);
    const gate = (name: string) => v.gates.find((g) => g.name === name)!.value as Record<string, number>;
    expect(gate('smoke')).toMatchObject({ rows: 256, outOfRange: 0 });
    expect(gate('smoke').min).toBeGreaterThanOrEqual(0);
    expect(gate('latency').p99Ms).toBeGreaterThan(0);
    // v3 has v2's weights: the same AUC on the evaluation set, against the default v1's lower one.
    expect(gate('offline').auc).toBeGreaterThan(gate('offline').baselineAuc!);
    expect(await predictWith(t, 'v3')).toEqual({ status: 200, version: 'v3', fallback: undefined });
    expect(JSON.parse(await readFile(join(dir, 'recommend', 'v3', 'status.json'), 'utf8')).status).toBe('ready');
  });

  it('refuses a file that is not a usable model with a 400 naming the part, and writes nothing', async () => {
    const { dir, lifecycle } = await start();
    const before = await tree(dir);
    const good = await candidate();
    const cases: [string, Parameters<VersionLifecycle['register']>[0], string][] = [
      ['not JSON', { name: 'recommend', version: 'v3', onnx: good.onnx, meta: '{"features": [', actor: 'a' }, 'meta'],
      ['no output name', { name: 'recommend', version: 'v3', onnx: good.onnx, meta: JSON.stringify({ features: ['x'] }), actor: 'a' }, 'meta'],
      ['not ONNX', { name: 'recommend', version: 'v3', onnx: new TextEncoder().encode('<html>not a model</html>'), meta: good.meta, actor: 'a' }, 'model'],
      ['inputs that do not match', { name: 'recommend', version: 'v3', onnx: good.onnx, meta: JSON.stringify({ ...JSON.parse(good.meta), features: ['a', 'b'] }), actor: 'a' }, 'model'],
      ['a bad version name', { name: 'recommend', version: 'V3!', onnx: good.onnx, meta: good.meta, actor: 'a' }, 'version'],
    ];
    for (const [what, req, path] of cases) {
      const err = await lifecycle.register(req).then(() => null, (e: { statusCode: number; details?: { fields: { path: string }[] } }) => e);
      expect(err, what).not.toBeNull();
      expect(err!.statusCode, what).toBe(400);
      expect(err!.details?.fields?.[0]?.path, what).toBe(path);
    }
    expect(await tree(dir)).toEqual(before);
  });

  it('answers 409 for a version that exists', async () => {
    const { lifecycle } = await start();
    const err = await lifecycle.register({ name: 'recommend', version: 'v2', ...(await candidate()), actor: 'a' }).catch((e) => e);
    expect(err.statusCode).toBe(409);
  });

  it('stores a working model that fails a gate as rejected, with the reason, and never serves it', async () => {
    const { t, lifecycle } = await start();
    const meta = JSON.parse((await candidate()).meta);
    const rejected = [
      // Scores outside the declared range.
      { version: 'v3', ...(await candidate({ meta: { outputRange: [0, 0.001] } })), gate: 'smoke' },
      // Scores that are not numbers.
      { version: 'v4', ...(await candidate({ bias: Number.NaN })), gate: 'smoke', also: 'offline' },
      // Worse than the default version on the evaluation set: every weight reversed.
      { version: 'v5', ...(await candidate({ weights: meta.logisticRegression.weights.map((w: number) => -w) })), gate: 'offline' },
    ];
    for (const r of rejected) {
      const v = await lifecycle.register({ name: 'recommend', version: r.version, onnx: r.onnx, meta: r.meta, actor: 'a' });
      expect(v.status, r.version).toBe('rejected');
      const failed = v.gates.filter((g) => !g.passed);
      expect(failed.map((g) => g.name), r.version).toEqual('also' in r ? [r.gate, r.also] : [r.gate]);
      expect(failed[0]!.reason).toBeTruthy();
      expect(v.error).toContain(r.gate);
      // Asked for by name, it is answered by the fallback version.
      expect(await predictWith(t, r.version)).toEqual({ status: 200, version: 'v1', fallback: 'true' });
    }
  });

  it('rejects a version slower than the model allows', async () => {
    const { dir, lifecycle } = await start();
    const { writeFile } = await import('node:fs/promises');
    const modelJson = join(dir, 'recommend', 'model.json');
    await writeFile(modelJson, JSON.stringify({ ...JSON.parse(await readFile(modelJson, 'utf8')), gates: { maxLatencyP99Ms: 0.000001 } }));
    const v = await lifecycle.register({ name: 'recommend', version: 'v3', ...(await candidate()), actor: 'a' });
    expect(v.status).toBe('rejected');
    expect(v.gates.find((g) => g.name === 'latency')).toMatchObject({ passed: false, value: { limitP99Ms: 0.000001 } });
  });
});

describe('retiring a model version', () => {
  it('refuses while the model or a user still names it, then stops serving it', async () => {
    const { t, lifecycle } = await start();
    const notUsed = async () => [];
    expect((await lifecycle.retire('recommend', 'v1', 'admin', notUsed).catch((e) => e)).statusCode).toBe(409);
    const inUse = await lifecycle.retire('recommend', 'v2', 'admin', async () => ['route recommend (defaultParams)']).catch((e) => e);
    expect(inUse.statusCode).toBe(409);
    expect(inUse.message).toContain('route recommend');
    const v = await lifecycle.retire('recommend', 'v2', 'admin', notUsed);
    expect(v).toMatchObject({ status: 'retired', retiredBy: 'admin' });
    expect(v.gates.length).toBe(5);
    expect(await predictWith(t, 'v2')).toEqual({ status: 200, version: 'v1', fallback: 'true' });
    expect((await lifecycle.retire('recommend', 'v9', 'admin', notUsed).catch((e) => e)).statusCode).toBe(404);
  });
});

describe('a candidate trained by `npm run train -- --version`', () => {
  it('passes the gates on every feature, and fails the offline gate on two weak ones', async () => {
    const { trainCandidate } = await import('../src/training/train-demo-models.ts');
    const { lifecycle } = await start();
    const out = join(await demoModelCopy(), 'candidates');
    await trainCandidate(join(out, 'v3'), { version: 'v3', rows: 20_000 });
    await trainCandidate(join(out, 'v4'), { version: 'v4', features: ['price', 'recency'], rows: 20_000 });
    const files = async (v: string) => ({ onnx: await readFile(join(out, v, 'model.onnx')), meta: await readFile(join(out, v, 'model.json'), 'utf8') });
    const good = await lifecycle.register({ name: 'recommend', version: 'v3', ...(await files('v3')), actor: 'training' });
    expect(good.status).toBe('ready');
    const weak = await lifecycle.register({ name: 'recommend', version: 'v4', ...(await files('v4')), actor: 'training' });
    expect(weak.status).toBe('rejected');
    expect(weak.gates.find((g) => !g.passed)).toMatchObject({ name: 'offline' });
    const offline = (v: typeof good) => v.gates.find((g) => g.name === 'offline')!.value as Record<string, number>;
    console.log(`gates: v3 AUC ${offline(good).auc} vs default ${offline(good).baselineAuc}; v4 AUC ${offline(weak).auc}`);
  }, 60_000);
});
