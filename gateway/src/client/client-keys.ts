import type { FastifyReply, FastifyRequest } from 'fastify';
import { createError } from '@bunryu/core';

/**
 * `BUNRYU_CLIENT_KEYS`: when set, every client call needs one of them in `x-api-key`. Returns
 * the onRequest hook, or null when no keys are configured.
 */
export function clientKeyCheck(keys: readonly string[] | undefined) {
  if (!keys || keys.length === 0) return null;
  const allowed = new Set(keys);
  return function checkClientKey(request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
    const key = request.headers['x-api-key'];
    if (typeof key === 'string' && allowed.has(key)) return done();
    done(createError('BUNRYU_UNAUTHORIZED', key === undefined ? 'x-api-key is required' : 'x-api-key is not a known client key'));
  };
}
