import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConfigSnapshot } from '@bunryu/core';
import { startFakeExperimentService, type FakeExperimentService } from './support/fake-experiment-service.ts';
import { startGateway, tempDir, until, type TestGateway } from './support/gateway.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';
import { startUpstream, type TestUpstream } from './support/upstream.ts';

/**
 * The experiment-service's data lost (Redis restarted empty) or replaced (an import): its
 * snapshots come with another epoch, possibly without the routes being served. A gateway keeps
 * what it serves until an operator names the new epoch.
 */
describe('config snapshots of another epoch', () => {
  let up: TestUpstream;
  let es: FakeExperimentService | undefined;
  let gw: TestGateway | undefined;
  let dataDir: string;

  const withEpoch = (s: ConfigSnapshot, epoch: string | undefined): ConfigSnapshot => (epoch === undefined ? s : { ...s, epoch });
  const original = () => withEpoch(snapshot(5, [route('recommend', up.url)], [experiment('ranker', 'recommend')]), 'epoch-a');
  const afterLoss = (version: number) => withEpoch(snapshot(version, [route('search', up.url)]), 'epoch-b');
  const status = async (name: string) => (await fetch(`${gw!.url}/v1/routes/${name}/x`, { headers: { 'x-unit-id': 'u1' } })).status;
  const refusedGauge = async () => /^bunryu_gateway_config_epoch_refused(?:\{[^}]*\})? (\d)$/m.exec(await (await fetch(`${gw!.url}/metrics`)).text())?.[1];

  beforeEach(async () => {
    up = await startUpstream();
    dataDir = await tempDir();
  });
  afterEach(async () => {
    await gw?.close();
    await es?.close();
    await up.close();
    gw = undefined;
    es = undefined;
  });

  it('keeps serving its routes when the service offers another epoch, newer or not, and says so', async () => {
    es = await startFakeExperimentService(original());
    gw = await startGateway({ experimentService: es.url, dataDir });
    await until(() => gw!.deps.store.current?.version === 5, 5000, 'the first snapshot');
    expect(await status('recommend')).toBe(200);
    expect(await refusedGauge()).toBe('0');

    es.publish(afterLoss(6));
    await until(() => gw!.deps.store.refusedEpoch?.epoch === 'epoch-b', 5000, 'the refusal');
    expect(gw.deps.store.refusedEpoch).toEqual({ epoch: 'epoch-b', version: 6, serving: 'epoch-a' });
    expect(gw.deps.store.current).toMatchObject({ version: 5, snapshot: { epoch: 'epoch-a' } });
    expect(await status('recommend')).toBe(200);
    expect(await status('search')).toBe(404);
    expect(await refusedGauge()).toBe('1');

    // The same version number in another epoch is no less foreign.
    es.publish(afterLoss(5));
    await until(() => gw!.deps.store.refusedEpoch?.version === 5, 5000, 'the second refusal');
    expect(await status('recommend')).toBe(200);

    // The old data coming back (Redis restarted from its own persistence) is simply taken.
    es.publish(withEpoch(snapshot(7, [route('recommend', up.url), route('search', up.url)]), 'epoch-a'));
    await until(() => gw!.deps.store.current?.version === 7, 5000, 'the same epoch again');
    expect(gw.deps.store.refusedEpoch).toBeNull();
    expect(await status('search')).toBe(200);
  });

  it('keeps its snapshot from disk across a restart, and switches only when GATEWAY_ACCEPT_EPOCH names the epoch', async () => {
    es = await startFakeExperimentService(original());
    gw = await startGateway({ experimentService: es.url, dataDir });
    await until(() => gw!.deps.store.current?.version === 5, 5000, 'the first snapshot');
    await gw.deps.store.persisted();
    await gw.close();
    es.publish(afterLoss(1));

    gw = await startGateway({ experimentService: es.url, dataDir });
    await until(() => gw!.deps.store.refusedEpoch?.epoch === 'epoch-b', 5000, 'the refusal after a restart');
    expect(gw.deps.store.current).toMatchObject({ version: 5, source: 'disk' });
    expect(await status('recommend')).toBe(200);
    await gw.close();

    gw = await startGateway({ experimentService: es.url, dataDir, env: { GATEWAY_ACCEPT_EPOCH: 'epoch-c' } });
    await until(() => gw!.deps.store.refusedEpoch?.epoch === 'epoch-b', 5000, 'the refusal of an epoch not named');
    expect(await status('recommend')).toBe(200);
    await gw.close();

    gw = await startGateway({ experimentService: es.url, dataDir, env: { GATEWAY_ACCEPT_EPOCH: 'epoch-b' } });
    await until(() => gw!.deps.store.current?.snapshot.epoch === 'epoch-b', 5000, 'the accepted epoch');
    expect(gw.deps.store.refusedEpoch).toBeNull();
    expect(await status('search')).toBe(200);
    expect(await status('recommend')).toBe(404);
  });

  it('takes snapshots without an epoch (services from before epochs) as before', async () => {
    es = await startFakeExperimentService(withEpoch(original(), undefined));
    gw = await startGateway({ experimentService: es.url, dataDir });
    await until(() => gw!.deps.store.current?.version === 5, 5000, 'the first snapshot');
    es.publish(original());
    await until(() => gw!.deps.store.current?.snapshot.epoch === 'epoch-a', 5000, 'the first epoch');
    es.publish(withEpoch(snapshot(9, [route('search', up.url)]), undefined));
    await until(() => gw!.deps.store.current?.version === 9, 5000, 'a snapshot without epoch');
  });
});
