import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chdbClient } from '../src/metrics-store/clickhouse-client.ts';
import { ClickHouseMetricsStore } from '../src/metrics-store/clickhouse-metrics-store.ts';
import { OPEN_END, storedEvent, type MetricSpec } from '../src/metrics-store/metrics-store.ts';
import { experimentData } from './support/events.ts';

const METRICS: MetricSpec[] = [{ kind: 'proportion', event: 'click' }, { kind: 'mean', event: 'dwell' }, { kind: 'error_rate' }, { kind: 'latency_ms' }];

describe('the memory cap of analysis queries (chdb)', () => {
  let store: ClickHouseMetricsStore;
  beforeAll(async () => {
    // A cap far below what any analysis needs: every series() must fail, and fail cleanly.
    store = await ClickHouseMetricsStore.open(chdbClient(mkdtempSync(join(tmpdir(), 'bunryu-store-cap-'))), { maxQueryMemoryBytes: 64 * 1024 });
    await store.insert(experimentData({ experiment: 'capped', variants: ['control', 'treatment'], units: 2000, seed: 3, start: 1_760_000_000_000, spanMs: 3_600_000 }).map(storedEvent));
  });
  afterAll(async () => {
    await store?.close();
  });

  it('turns a query over the cap into an error naming the memory limit, and the store keeps answering', async () => {
    await expect(store.series({ experiment: 'capped', metrics: METRICS, ends: [OPEN_END] })).rejects.toThrow(/memory limit/i);
    await expect(store.span('capped')).resolves.toMatchObject({ firstTs: expect.any(Number) });
    await store.ping();
  });
});
