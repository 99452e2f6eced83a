/**
 * A version's injected faults (model.json `faults`), on a listening server: exactly the share it
 * names fails with a 500 or answers late, other versions are untouched, and a malformed `faults`
 * keeps the version from loading with the field named.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModelCopy, instance, removeTempDirs, startApp, type TestApp } from './support/models.ts';

let t: TestApp;
let base: string;

async function addVersion(dir: string, name: string, faults: unknown): Promise<void> {
  await cp(join(dir, 'recommend', 'v2'), join(dir, 'recommend', name), { recursive: true });
  const meta = JSON.parse(await readFile(join(dir, 'recommend', 'v2', 'model.json'), 'utf8'));
  await writeFile(join(dir, 'recommend', name, 'model.json'), JSON.stringify({ ...meta, faults }));
}

beforeAll(async () => {
  const dir = await demoModelCopy();
  await addVersion(dir, 'v2-failing', { errorRate: 0.2 });
  await addVersion(dir, 'v2-slow', { slowRate: 0.25, delayMs: 1000 });
  await addVersion(dir, 'v2-broken', { errorRate: 1.5 });
  t = await startApp(dir);
  base = await t.app.listen({ port: 0, host: '127.0.0.1' });
}, 120_000);
afterAll(async () => {
  await t.close();
  await removeTempDirs();
});

async function predict(version: string): Promise<{ status: number; ms: number; body: { predictions?: number[]; error?: { code: string; message: string } } }> {
  const started = performance.now();
  const res = await fetch(`${base}/v1/models/recommend/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-ab-params': JSON.stringify({ version }) },
    body: JSON.stringify({ instances: [instance(), instance({ position: 4 })] }),
  });
  const body = (await res.json()) as { predictions?: number[] };
  return { status: res.status, ms: performance.now() - started, body };
}

describe('injected faults', () => {
  it('fails exactly errorRate of a version\'s answers with a 500, and none of another version\'s', async () => {
    const failing = [];
    for (let i = 0; i < 100; i++) failing.push(await predict('v2-failing'));
    const failed = failing.filter((r) => r.status === 500);
    expect(failed).toHaveLength(20);
    expect(failed[0]!.body.error).toMatchObject({ code: 'BUNRYU_INTERNAL' });
    expect(failed[0]!.body.error!.message).toContain('injected faults');
    expect(failing.filter((r) => r.status === 200 && r.body.predictions?.length === 2)).toHaveLength(80);

    const plain = [];
    for (let i = 0; i < 50; i++) plain.push(await predict('v2'));
    expect(plain.every((r) => r.status === 200)).toBe(true);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/bunryu_model_injected_failures_total\{model="recommend",version="v2-failing"[^}]*\} 20/);
  });

  it('holds back exactly slowRate of a version\'s answers by delayMs, and still answers them', async () => {
    // One at a time, and a delay far above an answer's own time on a loaded machine: which ones waited is then plain.
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(await predict('v2-slow'));
    expect(answers.every((r) => r.status === 200 && r.body.predictions?.length === 2)).toBe(true);
    const slow = answers.flatMap((r, i) => (r.ms >= 1000 ? [i + 1] : []));
    expect(slow).toEqual([4, 8, 12, 16, 20]);
  });

  it('keeps a version with malformed faults from loading, naming the field', async () => {
    const models = (await (await fetch(`${base}/v1/models`)).json()) as { models: { versions: { version: string; status: string; error?: string }[] }[] };
    const broken = models.models[0]!.versions.find((v) => v.version === 'v2-broken');
    expect(broken?.status).toBe('failed');
    expect(broken?.error).toContain('faults');
  });
});
