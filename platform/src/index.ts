export * from './http-server.ts';
export * from './boot.ts';
