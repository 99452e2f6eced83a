import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NodeReply, type ProxyRequest, type RouteProxy } from '../route-proxy.ts';
import { bodyOrNone, clipRequestId } from './wire.ts';

/**
 * `any /v1/routes/:route/*` as fastify routes, for `app.inject()` and any server without the fast
 * path: the same RouteProxy answers. Bodies are taken as raw bytes, never parsed; fastify applies
 * the body limit and takes the request id.
 */
export async function proxyRoutes(app: FastifyInstance, deps: { proxy: RouteProxy }): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  function handle(request: FastifyRequest, reply: FastifyReply): void {
    reply.hijack();
    deps.proxy.serve(request.raw as ProxyRequest, new NodeReply(reply.raw), clipRequestId(request.id), bodyOrNone(request.body as Buffer | undefined));
  }

  app.all('/v1/routes/:route', handle);
  app.all('/v1/routes/:route/*', handle);
}
