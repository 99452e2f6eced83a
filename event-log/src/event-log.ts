/**
 * The EventLog port (SPEC §5): an append-only, partitioned, keyed log of event records.
 * Two adapters implement it: Kafka (kafkajs) and the embedded default, a durable log on disk
 * that another process can consume with committed offsets. One contract suite runs against both.
 */

export interface LogRecord {
  /** Partitioning key: the unit id, so a unit's events stay in order. */
  key: string;
  /** The serialized event (JSON). */
  value: string;
}

export interface EventLogProducer {
  /** Resolves once the records are durable (Kafka: acks all; embedded: written and fsynced). Rejects when they may not be. */
  append(records: readonly LogRecord[]): Promise<void>;
  /** Resolves when the log answers (for /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface ConsumedRecord extends LogRecord {
  partition: number;
  offset: string;
}

export interface ConsumerHandlers {
  /**
   * Called with a batch of records of one partition, in offset order. Offsets are committed only
   * after it resolves; if it rejects, the same records are delivered again (at least once).
   */
  eachBatch(records: readonly ConsumedRecord[]): Promise<void>;
}

export interface EventLogConsumer {
  /** Starts consuming in the background; resolves once subscribed. */
  run(handlers: ConsumerHandlers): Promise<void>;
  /** Records appended but not yet committed by this group (consumer lag), summed over partitions. */
  lag(): Promise<number>;
  /**
   * Stops consuming. An eachBatch still running is awaited but its records are not committed:
   * the group's next consumer gets them again (as after a crash between processing and commit).
   */
  close(): Promise<void>;
}

export interface EventLogOptions {
  /** Kafka topic, or the embedded log's name (a folder under its directory). */
  topic: string;
}

export interface ConsumerOptions {
  /** Consumer group: consumers of one group share the work and its committed offsets. */
  group: string;
}

/** One log, both ends: what a composition root builds (Kafka or embedded) and hands to a service. */
export interface EventLog {
  producer(): EventLogProducer;
  consumer(options: ConsumerOptions): EventLogConsumer;
}

