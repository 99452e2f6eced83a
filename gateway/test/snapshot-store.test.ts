import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LogSink } from '@bunryu/platform';
import { SnapshotStore } from '../src/config-source/snapshot-store.ts';
import { UpstreamPools } from '../src/proxy/upstream-pools.ts';
import { tempDir } from './support/gateway.ts';
import { route, snapshot } from './support/snapshots.ts';

describe('SnapshotStore.loaded (a cluster worker waits on it before it listens)', () => {
  const pools: UpstreamPools[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });
  const store = async () => {
    const p = new UpstreamPools({ connections: 1 });
    pools.push(p);
    return new SnapshotStore({ file: join(await tempDir('bunryu-snapshot-store-'), 'snapshot.json'), pools: p, logger: new LogSink('gateway', true) });
  };

  it('resolves true when a snapshot arrives, and at once when one is served', async () => {
    const s = await store();
    const waiting = s.loaded(5_000);
    expect(s.update(snapshot(1, [route('recommend', 'http://127.0.0.1:9')]), 'service')).toBe('applied');
    expect(await waiting).toBe(true);
    expect(await s.loaded(0)).toBe(true);
  });

  it('resolves false after the wait without a snapshot', async () => {
    const s = await store();
    const started = Date.now();
    expect(await s.loaded(100)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    expect(s.current).toBeNull();
  });
});
