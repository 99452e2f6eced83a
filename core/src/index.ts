export * from './hash.ts';
export * from './schemas.ts';
export * from './targeting.ts';
export * from './assign.ts';
export * from './errors.ts';
export * from './env-config.ts';
export * from './events.ts';
export * from './http-errors.ts';
