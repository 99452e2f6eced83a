import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyServerOptions } from 'fastify';
import { lingerAfterAnswer } from '@bunryu/platform';
import type { ParserModule } from './http1/node-parser.ts';
import { RawHttpServer, type RequestHandler } from './http1/own-server.ts';
import { BodyBuffer, bodyTooLarge, declaredTooLarge, requestIdOf } from './http1/wire.ts';
import { NodeReply, isRouteUrl, sendError, type ProxyRequest, type RouteProxy } from './route-proxy.ts';

/** Filled in by buildApp once the proxy exists (the server is created before the app). */
export interface FastPathTarget {
  proxy: RouteProxy | null;
  /** fastify's request handler: how the gateway's own server answers a non-route request. */
  handler: RequestHandler | null;
  /** Set when the app starts closing: answers then close their connection. */
  closing: boolean;
  /** The gateway's own HTTP server for route connections; null when every connection goes to node:http. */
  raw: RawHttpServer | null;
}

/**
 * A fastify `serverFactory` for the gateway's hot path, `/v1/routes/…`, in two layers:
 * - a connection whose first request is for a route is served by the gateway's own HTTP server
 *   (raw-http.ts) on node's request parser, without node:http's per-request objects;
 * - every other connection goes to node:http, whose handler still hands `/v1/routes/…` straight
 *   to the RouteProxy and everything else to fastify.
 * Skipping fastify's per-request objects, hooks and reply pipeline, and where it can node:http's,
 * is what keeps the gateway ahead of a bare @fastify/http-proxy while it assigns and logs
 * (SPEC §7). Both keep fastify's conventions: `x-request-id` (kept from the client or a new
 * UUID), the 1 MiB body limit (413) and the shared error body.
 */
export function fastPathServerFactory(target: FastPathTarget, parser: ParserModule | null): NonNullable<FastifyServerOptions['serverFactory']> {
  return (handler, options): Server => {
    target.handler = handler;
    const server = createServer((req, res) => {
      const url = req.url;
      if (target.proxy !== null && url !== undefined && isRouteUrl(url)) {
        serveRoute(target, target.proxy, req, res);
        return;
      }
      handler(req, res);
    });
    // What fastify sets on a server it creates itself.
    const o = options as { keepAliveTimeout?: number; requestTimeout?: number; connectionTimeout?: number };
    server.keepAliveTimeout = o.keepAliveTimeout ?? 72_000;
    server.requestTimeout = o.requestTimeout ?? 0;
    server.setTimeout(o.connectionTimeout ?? 0);
    if (parser !== null) {
      const raw = new RawHttpServer({ target, parser, keepAliveTimeoutMs: server.keepAliveTimeout, requestTimeoutMs: server.headersTimeout });
      target.raw = raw;
      // node:http's own connection listener, called for the connections the gateway's server does not keep.
      const nodeListeners = server.listeners('connection') as ((socket: Socket) => void)[];
      server.removeAllListeners('connection');
      const handOff = (socket: Socket) => {
        for (const listener of nodeListeners) listener.call(server, socket);
      };
      server.on('connection', (socket: Socket) => raw.accept(socket, handOff));
    }
    return server;
  };
}

function serveRoute(target: FastPathTarget, proxy: RouteProxy, req: IncomingMessage, res: ServerResponse): void {
  if (target.closing) res.shouldKeepAlive = false;
  const requestId = requestIdOf(req.headers);
  const length = req.headers['content-length'];
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) {
    proxy.serve(req as ProxyRequest, new NodeReply(res), requestId, null);
    return;
  }
  if (declaredTooLarge(length)) return tooLarge(req, res, requestId);
  const body = new BodyBuffer();
  req.on('data', (chunk: Buffer) => {
    if (body.add(chunk)) return;
    req.removeAllListeners('data');
    req.removeAllListeners('end');
    tooLarge(req, res, requestId);
  });
  req.on('end', () => proxy.serve(req as ProxyRequest, new NodeReply(res), requestId, body.take()));
  req.on('error', () => res.destroy());
}

function tooLarge(req: IncomingMessage, res: ServerResponse, requestId: string): void {
  res.shouldKeepAlive = false;
  lingerAfterAnswer(req.socket);
  sendError(new NodeReply(res), bodyTooLarge(), requestId);
  req.resume();
}
