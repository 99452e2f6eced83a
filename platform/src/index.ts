export * from './http-server.ts';
export * from './boot.ts';
export * from './hot-metrics.ts';
export * from './log-sink.ts';
export * from './http-errors.ts';
export * from './lingering-close.ts';
