import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { EVENTS_TOPIC, type Event } from '@bunryu/core';
import { createKafkaEventLog, type EventLogConsumer } from '@bunryu/event-log';
import { integrationServer } from '@bunryu/platform/testing';
import { startFakeExperimentService, type FakeExperimentService } from './support/fake-experiment-service.ts';
import { startGateway, tempDir, until, type TestGateway } from './support/gateway.ts';
import { privateKafkaAvailable, startPrivateKafka, type PrivateKafka } from './support/private-kafka.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';
import { startUpstream, type TestUpstream } from './support/upstream.ts';

// The shared broker answering means this machine runs Kafka (jars and Java are there): the test
// then starts a broker of its own, which it can kill without disturbing anyone.
const shared = await integrationServer('KAFKA_BROKERS', '127.0.0.1:9092');
const runnable = shared.url !== undefined && privateKafkaAvailable();
if (!runnable && process.env.BUNRYU_REQUIRE_INTEGRATION === '1') {
  throw new Error('the Kafka jars are not in infra/kafka/lib (infra/kafka/start.sh fetches them) and BUNRYU_REQUIRE_INTEGRATION=1');
}

describe.skipIf(!runnable)('Kafka outage under load: spill to disk, replay on recovery', () => {
  let kafka: PrivateKafka;
  let kafkaDir: string;
  let up: TestUpstream;
  let es: FakeExperimentService;
  let gw: TestGateway;
  let consumer: EventLogConsumer | undefined;

  beforeAll(async () => {
    kafkaDir = await tempDir('bunryu-gateway-kafka-');
    kafka = await startPrivateKafka(kafkaDir);
    up = await startUpstream();
    es = await startFakeExperimentService(snapshot(1, [route('recommend', up.url)], [experiment('ranker', 'recommend'), experiment('layout', 'recommend')]));
    // KAFKA_BROKERS makes the composition root pick the Kafka adapter (topic bunryu.events).
    gw = await startGateway({ experimentService: es.url, env: { KAFKA_BROKERS: kafka.brokers } });
    await until(() => gw.deps.store.current !== null);
  }, 90_000);

  afterAll(async () => {
    await consumer?.close();
    await gw?.close();
    await es?.close();
    await up?.close();
    await kafka?.stop();
    if (kafkaDir) await rm(kafkaDir, { recursive: true, force: true });
  });

  it('keeps answering while the broker is down and delivers every event exactly once after it returns', async () => {
    const client = new Pool(gw.url, { connections: 8 });
    const requestIds = new Set<string>();
    const clientEventIds = new Set<string>();
    let failedAnswers = 0;
    let duringOutage = 0;
    let outage = false;
    let running = true;

    const worker = async (w: number) => {
      for (let i = 0; running; i++) {
        const unit = `load-${w}-${i % 50}`;
        if (i % 10 === 9) {
          const events = Array.from({ length: 10 }, () => ({ eventId: randomUUID(), type: 'click', unitId: unit, route: 'recommend' }));
          const res = await client.request({
            path: '/v1/events',
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ events }),
          });
          const body = (await res.body.json()) as { accepted: number };
          if (res.statusCode === 202 && body.accepted === 10) for (const e of events) clientEventIds.add(e.eventId);
          else failedAnswers++;
          continue;
        }
        const res = await client.request({ path: '/v1/routes/recommend/predict', method: 'GET', headers: { 'x-unit-id': unit } });
        await res.body.dump();
        if (res.statusCode === 200) requestIds.add(res.headers['x-request-id'] as string);
        else failedAnswers++;
        if (outage) duringOutage++;
        // Steady load (about 1,500 requests/s in all) rather than saturation: the broker restart
        // shares the machine's two cores with it.
        await sleep(2);
      }
    };
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const workers = Array.from({ length: 4 }, (_, w) => worker(w));

    // Healthy first: events flow to the broker.
    await until(() => gw.deps.publisher.stats().published > 0, 20_000, 'first events in Kafka');
    await sleep(300);
    await kafka.kill();
    outage = true;
    // Long enough for the adapter to give up on the dead broker and the publisher to spill.
    await until(() => gw.deps.publisher.stats().spilled > 0, 20_000, 'events to spill');
    await sleep(500);
    const spillingAt = gw.deps.publisher.stats();
    await kafka.start();
    outage = false;
    await sleep(700);
    running = false;
    await Promise.all(workers);
    await client.close();

    expect(failedAnswers).toBe(0);
    expect(duringOutage).toBeGreaterThan(0);
    expect(spillingAt.mode).toBe('spill');
    expect(spillingAt.failures).toBeGreaterThan(0);
    expect(spillingAt.published).toBeGreaterThan(0);

    await until(
      () => {
        const s = gw.deps.publisher.stats();
        return s.mode === 'memory' && s.spillPending === 0 && s.queued === 0;
      },
      60_000,
      'the spill to drain',
    );
    await gw.deps.publisher.flush();

    // Downstream: a consumer group reading the topic from the beginning, as the aggregator does.
    const sent = requestIds.size + clientEventIds.size;
    const received: Event[] = [];
    consumer = createKafkaEventLog({ brokers: kafka.brokers, topic: EVENTS_TOPIC }).consumer({ group: `gateway-spill-${randomUUID().slice(0, 8)}` });
    await consumer.run({
      eachBatch: async (records) => {
        for (const r of records) received.push(JSON.parse(r.value) as Event);
      },
    });
    await until(async () => received.length >= sent && (await consumer!.lag()) === 0, 30_000, 'the consumer to read everything');

    // Exactly once after deduplication by eventId, as the aggregator counts (SPEC §5): every
    // event arrived, and nothing arrived that was not sent.
    const exposures = received.filter((e) => e.type === 'exposure');
    const clicks = received.filter((e) => e.type === 'click');
    const distinct = new Set(received.map((e) => e.eventId));
    expect(new Set(exposures.map((e) => e.requestId))).toEqual(requestIds);
    expect(new Set(clicks.map((e) => e.eventId))).toEqual(clientEventIds);
    expect(distinct.size).toBe(sent);
    // Raw copies: an append cut by the kill may have reached the broker before its answer was
    // lost; the publisher re-sends that batch from the spill (at least once). Only such batches
    // can repeat, so duplicates stay within the failed appends' batches.
    const duplicates = received.length - sent;
    expect(duplicates).toBeGreaterThanOrEqual(0);
    expect(duplicates).toBeLessThanOrEqual(gw.deps.publisher.stats().failures * 1000);
    // Every click was tagged with the unit's assignments, spilled or not.
    expect(clicks.every((e) => e.assignments.length === 2)).toBe(true);
  }, 120_000);
});
