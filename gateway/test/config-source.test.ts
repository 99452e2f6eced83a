import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeExperimentService, type FakeExperimentService } from './support/fake-experiment-service.ts';
import { startGateway, tempDir, until, type TestGateway } from './support/gateway.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';
import { closedPort, startUpstream, type TestUpstream } from './support/upstream.ts';

describe('config from the experiment-service', () => {
  let up: TestUpstream;
  let es: FakeExperimentService | undefined;
  let gw: TestGateway | undefined;
  let port: number;
  let dataDir: string;

  const v1 = () => snapshot(1, [route('recommend', up.url)], [experiment('ranker', 'recommend')]);
  const allTreatment = (version: number) =>
    snapshot(version, [route('recommend', up.url)], [
      experiment('ranker', 'recommend', {
        variants: [
          { key: 'control', weight: 0, params: { version: '1' } },
          { key: 'treatment', weight: 100, params: { version: '2' } },
        ],
      }),
    ]);
  const assignmentsOf = async (unit: string) =>
    (await fetch(`${gw!.url}/v1/routes/recommend/x`, { headers: { 'x-unit-id': unit } })).headers.get('x-ab-assignments');
  const ready = async () => (await fetch(`${gw!.url}/readyz`)).status;

  beforeAll(async () => {
    up = await startUpstream();
    port = await closedPort();
    dataDir = await tempDir();
  });

  afterAll(async () => {
    await gw?.close();
    await es?.close();
    await up?.close();
  });

  it('is not ready, and answers 503, until a first snapshot arrives', async () => {
    gw = await startGateway({
      experimentService: `http://127.0.0.1:${port}`,
      dataDir,
      env: { EXPERIMENT_SERVICE_TOKEN: 'viewer-token' },
    });
    expect(await ready()).toBe(503);
    const res = await fetch(`${gw.url}/v1/routes/recommend/x`);
    expect(res.status).toBe(503);
    expect((await res.json()).error.code).toBe('BUNRYU_NOT_READY');
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);

    // The experiment-service comes up: the reconnect loop finds it.
    es = await startFakeExperimentService(v1(), port);
    await until(async () => (await ready()) === 200, 5000, 'readiness');
    expect(es.authorizations).toContain('Bearer viewer-token');
    await gw.deps.store.persisted();
    const persisted = JSON.parse(await readFile(join(dataDir, 'gateway', 'snapshot.json'), 'utf8'));
    expect(persisted.version).toBe(1);
  });

  it('swaps in a pushed snapshot live and persists it', async () => {
    const units = Array.from({ length: 20 }, (_, i) => `unit-${i}`);
    const before = await Promise.all(units.map(assignmentsOf));
    expect(before).toContain('ranker=control');
    await until(() => es!.streams() > 0, 5000, 'the stream');
    es!.publish(allTreatment(2));
    await until(() => gw!.deps.store.current?.version === 2, 2000, 'version 2');
    const after = await Promise.all(units.map(assignmentsOf));
    expect(new Set(after)).toEqual(new Set(['ranker=treatment']));
    await gw!.deps.store.persisted();
    expect(JSON.parse(await readFile(join(dataDir, 'gateway', 'snapshot.json'), 'utf8')).version).toBe(2);
    const metrics = await (await fetch(`${gw!.url}/metrics`)).text();
    expect(metrics).toMatch(/bunryu_gateway_config_version\{[^}]*\} 2/);
    expect(metrics).toMatch(/bunryu_gateway_config_stream_connected\{[^}]*\} 1/);
  });

  it('ignores an invalid snapshot and keeps serving the last good one', async () => {
    es!.publish({ version: 3, routes: { recommend: { upstream: 'not a url' } }, experiments: [], metrics: {}, holdout: null } as never);
    es!.publish(allTreatment(4));
    await until(() => gw!.deps.store.current?.version === 4, 2000, 'version 4');
    expect(await assignmentsOf('unit-1')).toBe('ranker=treatment');
  });

  it('reconnects when the experiment-service restarts (a conditional GET), and catches up', async () => {
    await es!.close();
    es = undefined;
    expect(await assignmentsOf('unit-1')).toBe('ranker=treatment');
    es = await startFakeExperimentService(allTreatment(4), port);
    await until(() => es!.streams() > 0, 5000, 'the reconnection');
    expect(es.configStatuses).toEqual([200]);
    // Nothing changed since that GET: the next reconnection asks with If-None-Match.
    await es.close();
    es = await startFakeExperimentService(allTreatment(4), port);
    await until(() => es!.streams() > 0, 5000, 'the second reconnection');
    expect(es.configStatuses).toEqual([304]);
    es.publish(snapshot(5, [route('recommend', up.url)], [experiment('ranker', 'recommend')]));
    await until(() => gw!.deps.store.current?.version === 5, 5000, 'version 5 after the restart');
  });

  it('serves the persisted snapshot after a restart while the experiment-service is down', async () => {
    await gw!.close();
    await es!.close();
    es = undefined;
    gw = await startGateway({ experimentService: `http://127.0.0.1:${port}`, dataDir });
    expect(gw.deps.store.current?.version).toBe(5);
    expect(gw.deps.store.current?.source).toBe('disk');
    expect(await ready()).toBe(200);
    const res = await fetch(`${gw.url}/v1/routes/recommend/x`, { headers: { 'x-unit-id': 'unit-3' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ab-assignments')).toMatch(/^ranker=(control|treatment)$/);
  });
});
