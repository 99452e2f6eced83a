import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createError } from '@bunryu/core';
import type { SessionStore } from '../session/session-store.ts';
import { clearedSessionCookie } from '../session/session-cookie.ts';
import { requireSession, sessionIdOf, type SecureCookie } from '../session/session-routes.ts';
import type { UpstreamClient } from './upstream-client.ts';

const FORWARDED_REQUEST_HEADERS = ['content-type', 'if-match', 'if-none-match', 'accept'] as const;
const FORWARDED_RESPONSE_HEADERS = ['content-type', 'etag', 'location', 'retry-after'] as const;

/**
 * `/api/<prefix>/v1/...` → `<upstream>/v1/...`. Only the versioned API is reachable, and path
 * tricks (`..`, encoded slashes or dots, backslashes) are refused before anything is sent.
 */
export function upstreamPath(url: string, prefix: string): string {
  const rest = url.slice(prefix.length);
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  if (!/^\/v1\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(path) || /(^|\/)\.\.?(\/|$)|%2f|%2e|%5c|\/\//i.test(path)) {
    throw createError('BUNRYU_NOT_FOUND', `no route ${path}`);
  }
  return rest;
}

export interface ProxyDeps {
  sessions: SessionStore;
  experimentService: UpstreamClient;
  aggregator: UpstreamClient;
  secureCookie: SecureCookie;
}

/**
 * The backend-for-frontend proxy: the browser sends its session cookie, the dashboard adds the
 * session's bearer token (to both services), so the token never reaches page scripts. Bodies pass through as bytes.
 */
export async function registerProxyRoutes(app: FastifyInstance, deps: ProxyDeps): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    const preHandler = requireSession(deps.sessions);

    /** `owner`: the service whose 401 means the token itself is gone, so the session ends with it. */
    const forward = (upstream: UpstreamClient, prefix: string, owner: boolean) => async (request: FastifyRequest, reply: FastifyReply) => {
      const headers: Record<string, string> = { 'x-request-id': request.id };
      for (const h of FORWARDED_REQUEST_HEADERS) {
        const v = request.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
      headers.authorization = `Bearer ${request.session!.token}`;
      const res = await upstream.request({
        method: request.method,
        path: upstreamPath(request.url, prefix),
        headers,
        body: Buffer.isBuffer(request.body) ? request.body : undefined,
      });
      if (owner && res.status === 401) {
        // The service no longer accepts the token (revoked or rotated): end the session too.
        await deps.sessions.delete(sessionIdOf(request));
        void reply.header('set-cookie', clearedSessionCookie({ secure: deps.secureCookie(request) }));
      }
      for (const h of FORWARDED_RESPONSE_HEADERS) {
        const v = res.headers.get(h);
        if (v !== null) void reply.header(h, v);
      }
      return reply.status(res.status).header('cache-control', 'no-store').send(res.body);
    };

    scope.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/api/es/*', preHandler, handler: forward(deps.experimentService, '/api/es', true) });
    // The aggregator's API only reads, with the session's token (results are business data). Its
    // 401 is passed on without ending the session: the experiment-service decides who is signed in.
    scope.route({ method: ['GET'], url: '/api/agg/*', preHandler, handler: forward(deps.aggregator, '/api/agg', false) });
  });
}
