export * from './event-log.ts';
export * from './file/file-event-log.ts';
export * from './kafka/kafka-event-log.ts';
