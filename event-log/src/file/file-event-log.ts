import type { ConsumerOptions, EventLog, EventLogConsumer, EventLogOptions, EventLogProducer } from '../event-log.ts';
import { FileLogConsumer } from './file-log-consumer.ts';
import { FileLogLayout } from './file-log-layout.ts';
import { FileLogProducer } from './file-log-producer.ts';
import { silentLogger, type Logger } from '@bunryu/platform/log';

export interface FileEventLogOptions extends EventLogOptions {
  /** Folder holding the logs (the services use `<BUNRYU_DATA_DIR>/events`); each topic is a folder under it. */
  dir: string;
  /** Fixed when the log is first created; every process opening it must give the same number. */
  partitions?: number;
  /** Size at which a partition starts a new segment (default 64 MiB). */
  segmentBytes?: number;
  /** Longest wait for new records when file notifications are missed (default 100 ms). */
  pollIntervalMs?: number;
  /** Upper bounds of one delivered batch (default 1 MiB and 5,000 records). */
  maxBatchBytes?: number;
  maxBatchRecords?: number;
  /** Backoff before a failed batch is delivered again (default 100 ms doubling up to 5 s). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Keep segments that every consumer group has committed (default false: delete them). */
  keepCommittedSegments?: boolean;
  /** How often a consumer looks for segments to delete (default 10 s). */
  retentionIntervalMs?: number;
  logger?: Logger;
}

/**
 * The embedded event log: a durable, partitioned log in files that a producer in one process
 * appends to and consumer groups in other processes tail (docs/adr/0001-embedded-event-log.md).
 */
export function createFileEventLog(options: FileEventLogOptions): EventLog {
  const layout = new FileLogLayout(options.dir, options.topic, options.partitions ?? 4);
  const logger = options.logger ?? silentLogger;
  return {
    producer(): EventLogProducer {
      return new FileLogProducer(layout, { segmentBytes: options.segmentBytes ?? 64 * 1024 * 1024, logger });
    },
    consumer({ group }: ConsumerOptions): EventLogConsumer {
      return new FileLogConsumer(layout, group, {
        pollIntervalMs: options.pollIntervalMs ?? 100,
        maxBatchBytes: options.maxBatchBytes ?? 1024 * 1024,
        maxBatchRecords: options.maxBatchRecords ?? 5000,
        retryInitialMs: options.retryInitialMs ?? 100,
        retryMaxMs: options.retryMaxMs ?? 5000,
        keepCommittedSegments: options.keepCommittedSegments ?? false,
        retentionIntervalMs: options.retentionIntervalMs ?? 10_000,
        logger,
      });
    },
  };
}
