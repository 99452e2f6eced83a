import { randomUUID } from 'node:crypto';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Event } from '@bunryu/core';
import type { LogRecord } from '@bunryu/event-log';
import { startFakeExperimentService, type FakeExperimentService } from './support/fake-experiment-service.ts';
import { startGateway, tempDir, until, type TestGateway } from './support/gateway.ts';
import { MemoryProducer } from './support/memory-producer.ts';
import { spilledEvents } from './support/spilled.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';
import { startUpstream, type TestUpstream } from './support/upstream.ts';

/**
 * A log that is down the way a dead Kafka broker is: an append neither succeeds nor fails at
 * once, but hangs until the client gives up (kafkajs: seconds).
 */
class HangingProducer extends MemoryProducer {
  hangMs = 3000;
  /** Appends hanging right now. */
  hanging = 0;

  override async append(records: readonly LogRecord[]): Promise<void> {
    if (this.down) {
      this.hanging++;
      await new Promise((r) => setTimeout(r, this.hangMs));
      this.hanging--;
    }
    return super.append(records);
  }
}

const clicks = (n: number) => Array.from({ length: n }, (_, i) => ({ eventId: randomUUID(), type: 'click', unitId: `unit-${i}`, route: 'recommend', value: 1 }));

describe('events acknowledged while the event log is down', () => {
  let up: TestUpstream;
  let es: FakeExperimentService;
  let gw: TestGateway | undefined;

  async function start(producer: MemoryProducer, dataDir?: string) {
    up = await startUpstream();
    es = await startFakeExperimentService(snapshot(1, [route('recommend', up.url)], [experiment('ranker', 'recommend')]));
    gw = await startGateway({ experimentService: es.url, producer, ...(dataDir ? { dataDir } : {}) });
    await until(() => gw!.deps.store.current !== null);
    return gw;
  }

  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    await es?.close();
    await up?.close();
  });

  /** A prediction with a request id of our own, to find its exposure; its status. */
  const predict = async (g: TestGateway, requestId: string) => {
    const res = await fetch(`${g.url}/v1/routes/recommend/predict`, { headers: { 'x-unit-id': 'unit-p', 'x-request-id': requestId } });
    await res.arrayBuffer();
    return res.status;
  };
  const post = (g: TestGateway, events: unknown[]) => fetch(`${g.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) });

  it('are on disk when the answer leaves, even while a replay to the log hangs (a process killed then loses none)', async () => {
    const producer = new HangingProducer();
    const g = await start(producer);
    producer.down = true;
    // The first append hangs, fails, and the publisher spills; its replays hang in turn.
    expect((await post(g, clicks(1))).status).toBe(202);
    await until(() => g.deps.publisher.stats().mode === 'spill', 10_000, 'spill mode');
    await until(() => g.deps.publisher.stats().spillPending > 0, 5000, 'the first spill');
    // The pump is replaying the spill into the log, and hangs there.
    await until(() => producer.hanging > 0, 5000, 'a replay in flight');

    const sent = clicks(20);
    const res = await post(g, sent);
    expect(res.status).toBe(202);
    expect(await predict(g, 'req-spilled')).toBe(200);

    // Read at once: no flush, no close, as after a SIGKILL.
    const disk = await spilledEvents(g.dataDir);
    const ids = new Set(disk.map((e) => e.eventId));
    expect(sent.filter((c) => !ids.has(c.eventId))).toEqual([]);
    expect(disk.filter((e) => e.type === 'exposure' && e.requestId === 'req-spilled')).toHaveLength(1);
  }, 30_000);

  it('answers at once while the log takes events', async () => {
    const producer = new HangingProducer();
    const g = await start(producer);
    expect(g.deps.publisher.flushBeforeAnswer()).toBe(false);
    expect((await post(g, clicks(5))).status).toBe(202);
    await until(() => producer.records.length === 5, 5000, 'the events in the log');
    expect(g.deps.publisher.stats().spilled).toBe(0);
  });

  it('refuses events with a 503 naming the spill when the disk is full, counts it, and delivers the rest when the log returns', async () => {
    const dataDir = await tempDir();
    const spillDir = join(dataDir, 'gateway', 'spill');
    await mkdir(spillDir, { recursive: true });
    const producer = new MemoryProducer();
    const g = await start(producer, dataDir);
    // The spill's first segment, opened on its first write, is a full disk: every write is ENOSPC.
    await symlink('/dev/full', join(spillDir, 'spill-000000000001.jsonl'));
    producer.down = true;

    // The log's failure is noticed on the first append, the disk's on the first spill write: from
    // then on events are refused, never answered 202 and then dropped.
    let res = await post(g, clicks(10));
    for (let i = 0; i < 50 && res.status === 202; i++) res = await post(g, clicks(1));
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('BUNRYU_NOT_READY');
    expect(body.error.message).toMatch(/disk spill/);
    expect(body.error.message).toMatch(/ENOSPC/);

    const lastRefused = clicks(3);
    const again = await post(g, lastRefused);
    expect(again.status).toBe(503);

    // Predictions are still answered; their exposures wait in memory.
    expect(await predict(g, 'req-kept')).toBe(200);

    const metrics = await (await fetch(`${g.url}/metrics`)).text();
    expect(Number(/^bunryu_gateway_event_spill_errors_total\{[^}]*\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/^bunryu_gateway_event_spill_failing\{[^}]*\} 1$/m);

    producer.down = false;
    await until(() => producer.events<Event>().some((e) => e.requestId === 'req-kept'), 10_000, 'the kept exposure in the log');
    await until(async () => (await post(g, [])).status === 202, 5000, 'events taken again');
    const late = clicks(2);
    expect((await post(g, late)).status).toBe(202);
    await g.deps.publisher.flush();
    const logged = new Set(producer.events<Event>().map((e) => e.eventId));
    expect(late.every((c) => logged.has(c.eventId))).toBe(true);
    // A batch refused up front was not published at all.
    expect(lastRefused.some((c) => logged.has(c.eventId))).toBe(false);
  }, 30_000);
});
