import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { Event } from '@bunryu/core';
import { chdbClient } from '../src/metrics-store/clickhouse-client.ts';
import { ClickHouseMetricsStore } from '../src/metrics-store/clickhouse-metrics-store.ts';
import { SCHEMA } from '../src/metrics-store/schema.ts';
import { storedEvent } from '../src/metrics-store/metrics-store.ts';
import { behaviour } from './support/events.ts';

/**
 * A store made before shadow pairs left the per-unit event sets: its view kept every type. The
 * aggregator opening it replaces that view and removes the shadow rows it wrote, keeping the rest.
 */
const OLD_UNIT_EVENTS_VIEW = `CREATE MATERIALIZED VIEW IF NOT EXISTS unit_events_mv TO unit_events AS
  SELECT type, unitId, max(ts) AS lastTs, groupUniqArrayState((ts, eventId, ifNull(value, 0.))) AS eventSet
  FROM events
  GROUP BY type, unitId`;

// chdb binds one data directory per process: this file has its own.
const client = chdbClient(mkdtempSync(join(tmpdir(), 'bunryu-migration-')));
afterAll(() => client.close());

const pair = (unitId: string, ts: number): Event =>
  behaviour('shadow', unitId, ts, {
    route: 'r',
    requestId: `rq-${unitId}-${ts}`,
    shadow: { compare: 'score', primary: { params: {}, status: 200, latencyMs: 3 }, shadow: { params: {}, status: 200, latencyMs: 4 } },
  });

async function perType(): Promise<Record<string, number>> {
  const rs = await client.query({ query: 'SELECT type, length(groupUniqArrayMerge(eventSet)) AS n FROM unit_events GROUP BY type ORDER BY type', format: 'JSONEachRow' });
  return Object.fromEntries((await rs.json<{ type: string; n: number }>()).map((r) => [r.type, Number(r.n)]));
}

async function views(): Promise<string[]> {
  const rs = await client.query({ query: "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine = 'MaterializedView' ORDER BY name", format: 'JSONEachRow' });
  return (await rs.json<{ name: string }>()).map((r) => r.name);
}

it('moves a store made before to the view without shadow pairs, keeping its other per-unit events', async () => {
  const t = 1_800_000_000_000;
  const old = SCHEMA.filter((s) => !s.includes('unit_events_v2_mv')).concat(OLD_UNIT_EVENTS_VIEW);
  for (const statement of old) await client.command({ query: statement });
  const insert = (events: Event[]) => client.insert({ table: 'events', values: events.map((e) => storedEvent(e).json), format: 'JSONEachRow' });
  await insert([behaviour('click', 'u1', t), behaviour('click', 'u2', t + 1), pair('u1', t + 2), pair('u2', t + 3)]);
  expect(await perType()).toEqual({ click: 2, shadow: 2 });

  const store = await ClickHouseMetricsStore.open(client);
  expect(await views()).toEqual(['unit_exposures_mv', 'unit_events_v2_mv'].sort());
  await expect.poll(perType, { timeout: 10_000 }).toEqual({ click: 2 });

  await store.insert([behaviour('click', 'u3', t + 4), pair('u3', t + 5)].map(storedEvent));
  expect(await perType()).toEqual({ click: 3 });
  await store.insert([behaviour('click', 'u4', t + 6)].map(storedEvent));

  // Opening it again changes nothing.
  await ClickHouseMetricsStore.open(client);
  expect(await views()).toEqual(['unit_exposures_mv', 'unit_events_v2_mv'].sort());
  expect(await perType()).toEqual({ click: 4 });
  const rs = await client.query({ query: "SELECT count() AS n FROM events WHERE type = 'shadow'", format: 'JSONEachRow' });
  expect(Number((await rs.json<{ n: number }>())[0]!.n), 'the pairs themselves stay in events').toBe(3);
});

it('finishes the move at the next start when the aggregator stopped between the drop and the delete', async () => {
  const t = 1_800_000_100_000;
  await client.command({ query: OLD_UNIT_EVENTS_VIEW });
  await client.insert({ table: 'events', values: [pair('u5', t), behaviour('click', 'u5', t + 1)].map((e) => storedEvent(e).json), format: 'JSONEachRow' });
  expect((await perType()).shadow).toBe(1);
  await client.command({ query: 'DROP VIEW unit_events_mv' }); // the stop came here

  await ClickHouseMetricsStore.open(client);
  await expect.poll(perType, { timeout: 10_000 }).toEqual({ click: 5 });
});
