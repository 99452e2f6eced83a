import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requestIdOf } from './http1/wire.ts';
import { NodeReply, type ProxyRequest, type RouteProxy } from './route-proxy.ts';

/**
 * `any /v1/routes/:route/*` as fastify routes, for `app.inject()` and any server without the fast
 * path: the same RouteProxy answers. Bodies are taken as raw bytes, never parsed.
 */
export async function proxyRoutes(app: FastifyInstance, deps: { proxy: RouteProxy }): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  function handle(request: FastifyRequest, reply: FastifyReply): void {
    reply.hijack();
    const body = request.body as Buffer | undefined;
    deps.proxy.serve(request.raw as ProxyRequest, new NodeReply(reply.raw), requestIdOf(request.headers, request.id), body && body.length > 0 ? body : null);
  }

  app.all('/v1/routes/:route', handle);
  app.all('/v1/routes/:route/*', handle);
}
