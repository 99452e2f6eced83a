import { setTimeout as sleep } from 'node:timers/promises';
import { CompressionTypes, Kafka, Partitioners, logLevel, type Admin, type Consumer, type LogEntry, type Producer, type RetryOptions } from 'kafkajs';
import type { ConsumedRecord, ConsumerHandlers, ConsumerOptions, EventLog, EventLogConsumer, EventLogOptions, EventLogProducer, LogRecord } from '../event-log.ts';
import { silentLogger, type Logger } from '@bunryu/platform/log';

export interface KafkaEventLogOptions extends EventLogOptions {
  /** Seed brokers: an array, or a comma-separated list as in KAFKA_BROKERS. */
  brokers: string | readonly string[];
  clientId?: string;
  /** Used when the topic is missing and gets created (default 4 partitions, replication 1). */
  partitions?: number;
  replicationFactor?: number;
  /** Compression of produced batches (default none: broker and services share the machine's CPU). */
  compression?: 'none' | 'gzip';
  /**
   * Bound on append() and ping(): they reject within this time (default 10 s and 5 s) even when a
   * broker accepts connections but never answers. A down broker fails faster, after the connection
   * timeout and the retries (about 2-3 s).
   */
  appendTimeoutMs?: number;
  pingTimeoutMs?: number;
  /** Longest time a fetch waits at the broker for new records: the idle delivery latency (default 200 ms). */
  maxWaitTimeMs?: number;
  /**
   * Largest fetch per partition (default 8 MiB; kafkajs' own is 1 MiB). Bigger fetches make
   * bigger batches for the consumer, which matters when each batch is one database insert.
   */
  maxBytesPerPartition?: number;
  /** Backoff before a failed batch is delivered again (default 100 ms doubling up to 5 s). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Gets kafkajs' errors and the adapter's warnings; without one they are dropped. */
  logger?: Logger;
}

/** Short retries: a down broker must make append() fail soon so the gateway buffers instead of waiting. */
const RETRY: RetryOptions = { initialRetryTime: 100, maxRetryTime: 1000, retries: 3 };

/**
 * The Kafka adapter of the EventLog port (kafkajs). Producer: idempotent, acks from all in-sync
 * replicas, keyed by the record key with Kafka's default (murmur2) partitioner. Consumer: a
 * consumer group that commits a batch's offsets only after eachBatch resolves.
 */
export function createKafkaEventLog(options: KafkaEventLogOptions): EventLog {
  const logger = options.logger ?? silentLogger;
  const brokers = typeof options.brokers === 'string' ? options.brokers.split(',').map((b) => b.trim()).filter(Boolean) : [...options.brokers];
  const kafka = new Kafka({
    clientId: options.clientId ?? 'bunryu',
    brokers,
    connectionTimeout: 1000,
    requestTimeout: 5000,
    retry: RETRY,
    logLevel: logLevel.ERROR,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...details } = entry.log;
      if (entry.level <= logLevel.ERROR) logger.error({ ...details, namespace: entry.namespace }, `kafkajs: ${message}`);
      else logger.warn({ ...details, namespace: entry.namespace }, `kafkajs: ${message}`);
    },
  });
  const context: KafkaContext = {
    kafka,
    topic: options.topic,
    logger,
    appendTimeoutMs: options.appendTimeoutMs ?? 10_000,
    pingTimeoutMs: options.pingTimeoutMs ?? 5000,
    maxWaitTimeMs: options.maxWaitTimeMs ?? 200,
    maxBytesPerPartition: options.maxBytesPerPartition ?? 8 * 1024 * 1024,
    retryInitialMs: options.retryInitialMs ?? 100,
    retryMaxMs: options.retryMaxMs ?? 5000,
    compression: options.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
    ensureTopic: memoizeUntilFailure(async (admin: Admin) => {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic: options.topic, numPartitions: options.partitions ?? 4, replicationFactor: options.replicationFactor ?? 1 }],
      });
    }),
  };
  return {
    producer: () => new KafkaLogProducer(context),
    consumer: ({ group }: ConsumerOptions) => new KafkaLogConsumer(context, group),
  };
}

interface KafkaContext {
  kafka: Kafka;
  topic: string;
  logger: Logger;
  appendTimeoutMs: number;
  pingTimeoutMs: number;
  maxWaitTimeMs: number;
  maxBytesPerPartition: number;
  retryInitialMs: number;
  retryMaxMs: number;
  compression: CompressionTypes;
  /** Creates the topic when missing (once per log, again after a failure). */
  ensureTopic(admin: Admin): Promise<void>;
}

class KafkaLogProducer implements EventLogProducer {
  private connecting: Promise<Producer> | undefined;
  private readonly admin: LazyAdmin;
  private closed = false;

  constructor(private readonly context: KafkaContext) {
    this.admin = new LazyAdmin(context.kafka);
  }

  async append(records: readonly LogRecord[]): Promise<void> {
    if (this.closed) throw new Error('the kafka event log producer is closed');
    if (records.length === 0) return;
    const connecting = this.connect();
    const messages = records.map((r) => ({ key: r.key, value: r.value }));
    try {
      await withTimeout(
        connecting.then((producer) => producer.send({ topic: this.context.topic, acks: -1, compression: this.context.compression, messages })),
        this.context.appendTimeoutMs,
        `appending to kafka topic ${this.context.topic}`,
      );
    } catch (error) {
      // A fresh producer (new producer id) after a failure: an idempotent producer whose send
      // failed can be left with sequence numbers the broker refuses.
      if (this.connecting === connecting) {
        this.connecting = undefined;
        connecting.then((producer) => producer.disconnect()).catch(() => {});
      }
      throw error;
    }
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('the kafka event log producer is closed');
    await this.admin.ping(this.context);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const connecting = this.connecting;
    this.connecting = undefined;
    await Promise.all([connecting?.then((producer) => producer.disconnect()).catch(() => {}), this.admin.close()]);
  }

  private connect(): Promise<Producer> {
    if (!this.connecting) {
      const connecting = (async () => {
        await this.context.ensureTopic(await this.admin.get());
        const producer = this.context.kafka.producer({
          idempotent: true,
          maxInFlightRequests: 1,
          allowAutoTopicCreation: false,
          createPartitioner: Partitioners.DefaultPartitioner,
          retry: RETRY,
        });
        try {
          await producer.connect();
        } catch (error) {
          await producer.disconnect().catch(() => {});
          throw error;
        }
        return producer;
      })();
      this.connecting = connecting;
      connecting.catch(() => {
        if (this.connecting === connecting) this.connecting = undefined;
      });
    }
    return this.connecting;
  }
}

class KafkaLogConsumer implements EventLogConsumer {
  private consumer: Consumer | undefined;
  private readonly admin: LazyAdmin;
  private closing = false;

  constructor(
    private readonly context: KafkaContext,
    private readonly group: string,
  ) {
    this.admin = new LazyAdmin(context.kafka);
  }

  async run(handlers: ConsumerHandlers): Promise<void> {
    if (this.closing) throw new Error(`the kafka event log consumer of group "${this.group}" is closed`);
    if (this.consumer) throw new Error(`the kafka event log consumer of group "${this.group}" is already running`);
    const { kafka, topic, logger } = this.context;
    const consumer = kafka.consumer({
      groupId: this.group,
      maxWaitTimeInMs: this.context.maxWaitTimeMs,
      maxBytesPerPartition: this.context.maxBytesPerPartition,
      maxBytes: this.context.maxBytesPerPartition * 4,
      allowAutoTopicCreation: false,
      retry: RETRY,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      logger.error({ err: payload.error, group: this.group, restart: payload.restart }, 'event log: the kafka consumer crashed');
    });
    const failures = new Map<number, number>();
    try {
      await this.context.ensureTopic(await this.admin.get());
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          if (batch.messages.length === 0 || this.closing || !isRunning() || isStale()) return;
          const records: ConsumedRecord[] = batch.messages.map((m) => ({
            key: m.key?.toString('utf8') ?? '',
            value: m.value?.toString('utf8') ?? '',
            partition: batch.partition,
            offset: m.offset,
          }));
          try {
            await handlers.eachBatch(records);
          } catch (error) {
            const attempt = (failures.get(batch.partition) ?? 0) + 1;
            failures.set(batch.partition, attempt);
            logger.warn(
              { err: error, group: this.group, partition: batch.partition, offset: batch.firstOffset(), attempt },
              'event log: eachBatch failed; its records will be delivered again',
            );
            const delay = Math.min(this.context.retryMaxMs, this.context.retryInitialMs * 2 ** (attempt - 1));
            for (const until = Date.now() + delay; Date.now() < until && isRunning() && !this.closing; ) {
              await sleep(Math.min(200, until - Date.now()));
              await heartbeat().catch(() => {});
            }
            // Nothing resolved: kafkajs fetches this partition from the same offset again.
            return;
          }
          // Closed while the handler ran: like a crash before the commit, the group gets these again.
          if (this.closing || !isRunning() || isStale()) return;
          failures.delete(batch.partition);
          resolveOffset(batch.lastOffset());
          await consumer.commitOffsets([{ topic, partition: batch.partition, offset: (BigInt(batch.lastOffset()) + 1n).toString() }]);
        },
      });
    } catch (error) {
      this.consumer = undefined;
      await consumer.disconnect().catch(() => {});
      throw error;
    }
  }

  async lag(): Promise<number> {
    const { topic } = this.context;
    const admin = await this.admin.get();
    await this.context.ensureTopic(admin);
    const [groupOffsets, topicOffsets] = await Promise.all([admin.fetchOffsets({ groupId: this.group, topics: [topic] }), admin.fetchTopicOffsets(topic)]);
    const committed = new Map((groupOffsets.find((t) => t.topic === topic)?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    let lag = 0;
    for (const p of topicOffsets) {
      const from = committed.get(p.partition) ?? -1;
      // A group that never committed starts at the oldest record kept (fromBeginning).
      lag += Math.max(0, Number(p.high) - (from >= 0 ? from : Number(p.low)));
    }
    return lag;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.consumer?.disconnect().catch((error: unknown) => this.context.logger.warn({ err: error }, 'event log: disconnecting the kafka consumer failed'));
    await this.admin.close();
  }
}

/** An admin client connected on first use and dropped after a failure, so the next call reconnects. */
class LazyAdmin {
  private connecting: Promise<Admin> | undefined;

  constructor(private readonly kafka: Kafka) {}

  get(): Promise<Admin> {
    if (!this.connecting) {
      const connecting = (async () => {
        const admin = this.kafka.admin({ retry: RETRY });
        await admin.connect();
        return admin;
      })();
      this.connecting = connecting;
      connecting.catch(() => {
        if (this.connecting === connecting) this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  async ping(context: KafkaContext): Promise<void> {
    const connecting = this.get();
    try {
      await withTimeout(
        connecting.then(async (admin) => {
          await context.ensureTopic(admin);
          await admin.describeCluster();
        }),
        context.pingTimeoutMs,
        'pinging kafka',
      );
    } catch (error) {
      if (this.connecting === connecting) {
        this.connecting = undefined;
        connecting.then((admin) => admin.disconnect()).catch(() => {});
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    const connecting = this.connecting;
    this.connecting = undefined;
    await connecting?.then((admin) => admin.disconnect()).catch(() => {});
  }
}

function memoizeUntilFailure<A>(run: (arg: A) => Promise<void>): (arg: A) => Promise<void> {
  let done: Promise<void> | undefined;
  return (arg) => {
    if (!done) {
      const attempt = run(arg);
      done = attempt;
      attempt.catch(() => {
        if (done === attempt) done = undefined;
      });
    }
    return done;
  };
}

async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
