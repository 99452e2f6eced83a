import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { BunryuError, clientErrorBody, validationError } from '@bunryu/core';
import { lingerAfterAnswer } from './lingering-close.ts';

/**
 * The error handler every service installs. 4xx are logged at info with their message; 5xx are
 * logged at error and their message is hidden from the client.
 */
export function httpErrorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  const e = toBunryuError(error);
  if (e.statusCode >= 500) {
    request.log.error({ err: error }, 'request failed');
    void reply.status(e.statusCode).send(clientErrorBody(e));
    return;
  }
  request.log.info({ code: e.code, msg: e.message }, 'request rejected');
  const retryAfter = (e.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
  if (e.statusCode === 429 && typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
  // The rest of the body may still be on its way: let the client read the 413 before the close.
  if (e.statusCode === 413) lingerAfterAnswer(request.raw.socket);
  void reply.status(e.statusCode).send(e.toBody());
}

export function toBunryuError(error: unknown): BunryuError {
  if (error instanceof BunryuError) return error;
  const e = error as Partial<FastifyError> & { issues?: { path: PropertyKey[]; message: string }[] };
  if (Array.isArray(e.issues)) return validationError(e.issues);
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BunryuError('BUNRYU_PAYLOAD_TOO_LARGE');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new BunryuError('BUNRYU_UNSUPPORTED_MEDIA_TYPE');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new BunryuError('BUNRYU_INVALID_JSON', `body: ${e.message ?? 'invalid JSON'}`);
  }
  if (e.validation) return validationError(e.validation.map((v) => ({ path: (v.instancePath ?? '').split('/').filter(Boolean), message: v.message ?? 'invalid' })));
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 404) return new BunryuError('BUNRYU_NOT_FOUND', e.message);
    if (e.statusCode === 413) return new BunryuError('BUNRYU_PAYLOAD_TOO_LARGE');
    return new BunryuError('BUNRYU_VALIDATION', e.message);
  }
  return new BunryuError('BUNRYU_INTERNAL', e.message);
}
