import { join } from 'node:path';
import { createFileEventLog, createKafkaEventLog, type EventLogProducer } from '@bunryu/event-log';
import type { Config } from './config.ts';
import { ConfigSubscriber } from './config-source/config-subscriber.ts';
import { SnapshotStore } from './config-source/snapshot-store.ts';
import { EventPublisher, type EventSink } from './events/event-publisher.ts';
import { SpillLog } from './events/spill-log.ts';
import { LogSink } from '@bunryu/platform';
import { UpstreamPools } from './proxy/upstream-pools.ts';

export interface ComposeOverrides {
  /** Replaces the event log producer the config would pick (tests). */
  producer?: EventLogProducer;
  /** Tuning of the publisher (tests shorten the recovery backoff). */
  publisher?: { flushIntervalMs?: number; retryMinMs?: number; retryMaxMs?: number; appendTimeoutMs?: number };
  /** Tuning of the config subscriber (tests shorten the reconnect backoff). */
  subscriber?: { backoffMinMs?: number; backoffMaxMs?: number };
  /** Where events go instead of a publisher of this process's own (a cluster worker: the primary's). */
  events?: EventSink;
}

/**
 * The composition root: the only place that chooses real or embedded adapters. KAFKA_BROKERS set
 * → the Kafka event log, else the embedded log under `<BUNRYU_DATA_DIR>/events` (which the
 * aggregator reads). The persisted snapshot is loaded before the subscriber starts, so a gateway
 * restarted while the experiment-service is down serves at once.
 */
export async function compose(config: Readonly<Config>, overrides: ComposeOverrides = {}) {
  const logger = new LogSink('gateway', config.LOG_LEVEL === 'silent');
  const dataDir = join(config.BUNRYU_DATA_DIR, 'gateway');
  const pools = new UpstreamPools({ connections: config.GATEWAY_UPSTREAM_CONNECTIONS });
  const events = overrides.events ? { publisher: overrides.events, close: () => overrides.events!.close() } : await composeEvents(config, logger, overrides);

  const store = new SnapshotStore({
    file: join(dataDir, 'snapshot.json'),
    pools,
    logger,
    ...(config.GATEWAY_ACCEPT_EPOCH ? { acceptEpoch: config.GATEWAY_ACCEPT_EPOCH } : {}),
  });
  await store.loadPersisted();
  const subscriber = new ConfigSubscriber({
    url: config.EXPERIMENT_SERVICE_URL,
    token: config.EXPERIMENT_SERVICE_TOKEN,
    store,
    logger,
    ...overrides.subscriber,
  });
  subscriber.start();

  let closed = false;
  return {
    logger,
    pools,
    publisher: events.publisher,
    store,
    subscriber,
    /** After the app stopped taking requests: stop the config stream, make every event durable, close pools. */
    close: async () => {
      if (closed) return;
      closed = true;
      await subscriber.stop();
      await events.close();
      await store.persisted();
      await pools.close();
    },
  };
}
export type Deps = Awaited<ReturnType<typeof compose>>;

/**
 * The event publisher and what it writes to: the event log, and the disk spill for when the log
 * is unreachable. One per gateway: in a cluster it lives in the primary.
 */
export async function composeEvents(config: Readonly<Config>, logger: LogSink, overrides: Pick<ComposeOverrides, 'producer' | 'publisher'> = {}) {
  const producer = overrides.producer ?? (await createProducer(config, logger));
  const spill = await SpillLog.open(join(config.BUNRYU_DATA_DIR, 'gateway', 'spill'));
  if (spill.pending > 0) logger.warn({ pending: spill.pending }, 'events spilled by a previous run will be replayed first');
  const publisher = new EventPublisher({
    producer,
    spill,
    queueLimit: config.GATEWAY_EVENT_QUEUE_LIMIT,
    queueBytesLimit: config.GATEWAY_EVENT_QUEUE_MB * 1024 * 1024,
    // An append costs a Kafka round trip or an fsync, whatever its size. A Kafka record batch
    // must stay under the broker's 1 MB message.max.bytes; the embedded log takes what a flush
    // tick gathered in one write, so a busy gateway does not fall behind on fsyncs.
    batchSize: config.KAFKA_BROKERS ? 1000 : 10_000,
    logger,
    ...overrides.publisher,
  });
  return {
    publisher,
    close: async () => {
      await publisher.close();
      await producer.close();
    },
  };
}

async function createProducer(config: Readonly<Config>, logger: LogSink): Promise<EventLogProducer> {
  const log = config.KAFKA_BROKERS
    ? createKafkaEventLog({ brokers: config.KAFKA_BROKERS, topic: config.BUNRYU_EVENTS_TOPIC, clientId: 'bunryu-gateway', logger })
    : createFileEventLog({ dir: join(config.BUNRYU_DATA_DIR, 'events'), topic: config.BUNRYU_EVENTS_TOPIC, logger });
  return log.producer();
}
