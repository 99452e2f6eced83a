import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createFileEventLog, createKafkaEventLog, type EventLog } from '@bunryu/event-log';
import type { Config } from './config.ts';
import { DefinitionsSource } from './definitions/definitions-source.ts';
import { Ingester } from './ingest/ingester.ts';
import { LogSink } from '@bunryu/platform';
import { chdbClient, clickHouseServerClient } from './metrics-store/clickhouse-client.ts';
import { ClickHouseMetricsStore } from './metrics-store/clickhouse-metrics-store.ts';

export interface ComposeOverrides {
  /** Replaces the event log the config would pick (tests). */
  eventLog?: EventLog;
}

/**
 * The composition root: the only place that chooses real or embedded adapters.
 * - KAFKA_BROKERS set → consume Kafka; else the embedded log under `<BUNRYU_DATA_DIR>/events`.
 * - CLICKHOUSE_URL set → a ClickHouse server; else chdb in-process under `<BUNRYU_DATA_DIR>/aggregator/chdb`.
 * The cached definitions are loaded before anything starts, so a restarted aggregator answers
 * while the experiment-service is down; ingestion starts at once.
 */
export async function compose(config: Readonly<Config>, overrides: ComposeOverrides = {}) {
  const logger = new LogSink('aggregator', config.LOG_LEVEL === 'silent');
  const dataDir = join(config.BUNRYU_DATA_DIR, 'aggregator');
  await mkdir(dataDir, { recursive: true });

  const client = config.CLICKHOUSE_URL ? clickHouseServerClient(config.CLICKHOUSE_URL) : chdbClient(join(dataDir, 'chdb'));
  const store = await ClickHouseMetricsStore.open(client, {
    maxQueryMemoryBytes: config.AGGREGATOR_QUERY_MAX_MEMORY_MB * 2 ** 20,
    fold: { overlapMs: config.AGGREGATOR_FOLD_OVERLAP_MS },
  });

  const log =
    overrides.eventLog ??
    (config.KAFKA_BROKERS
      ? createKafkaEventLog({ brokers: config.KAFKA_BROKERS, topic: config.BUNRYU_EVENTS_TOPIC, clientId: 'bunryu-aggregator', logger })
      : createFileEventLog({
          dir: join(config.BUNRYU_DATA_DIR, 'events'),
          topic: config.BUNRYU_EVENTS_TOPIC,
          logger,
          // An insert costs tens of ms whatever its size: under load, let batches grow so the
          // fixed cost is shared by many rows (idle, a batch is whatever arrived: low latency).
          maxBatchRecords: 50_000,
          maxBatchBytes: 32 * 1024 * 1024,
        }));
  const ingester = new Ingester({ consumer: log.consumer({ group: config.AGGREGATOR_CONSUMER_GROUP }), store, logger });

  const definitions = new DefinitionsSource({
    url: config.EXPERIMENT_SERVICE_URL,
    token: config.EXPERIMENT_SERVICE_TOKEN,
    file: join(dataDir, 'definitions.json'),
    refreshMs: config.AGGREGATOR_CONFIG_REFRESH_MS,
    logger,
  });
  await definitions.load();
  definitions.start();

  try {
    await ingester.start();
  } catch (err) {
    await definitions.stop();
    await store.close();
    throw err;
  }

  let closed = false;
  return {
    logger,
    store,
    ingester,
    definitions,
    /** After the app stopped taking requests: stop consuming (an unfinished batch stays uncommitted), then close the store. */
    close: async () => {
      if (closed) return;
      closed = true;
      await definitions.stop();
      await ingester.stop();
      await store.close();
    },
  };
}
export type Deps = Awaited<ReturnType<typeof compose>>;
