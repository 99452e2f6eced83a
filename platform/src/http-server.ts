import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { hotCounter, hotHistogram } from './hot-metrics.ts';
import { errorBody } from '@bunryu/core';
import { httpErrorHandler } from './http-errors.ts';
import { answerClientError } from './lingering-close.ts';

export const BODY_LIMIT = 1024 * 1024;

export interface ReadinessCheck {
  name: string;
  check: () => Promise<void> | void;
}

export interface HttpServerOptions {
  service: string;
  logLevel?: string;
  /** Dependencies that must answer for /readyz to be 200. */
  readiness?: ReadinessCheck[];
  fastify?: FastifyServerOptions;
  /** What /metrics serves instead of this app's registry (a cluster worker: the whole cluster's). */
  metrics?: () => Promise<string>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Prometheus registry of this app: add service metrics here, /metrics serves it. */
    metrics: Registry;
  }
}

/**
 * The fastify instance every service starts from: request ids, 1 MiB body limit, the shared
 * error handler and 404 body, and /healthz, /readyz and /metrics (SPEC §2).
 */
export function createHttpServer(opts: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    logger: opts.logLevel === 'silent' ? false : { level: opts.logLevel ?? 'info', base: { service: opts.service } },
    bodyLimit: BODY_LIMIT,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // Per-request log lines would dominate the hot path; errors are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    clientErrorHandler: answerClientError,
    ...opts.fastify,
  });

  const registry = new Registry();
  registry.setDefaultLabels({ service: opts.service });
  collectDefaultMetrics({ register: registry });
  app.decorate('metrics', registry);

  const requests = hotCounter(registry, 'bunryu_http_requests_total', 'HTTP requests by route and status', ['method', 'route', 'status']);
  const duration = hotHistogram(registry, 'bunryu_http_request_duration_seconds', 'HTTP request duration', ['method', 'route'], [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
  ]);
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc([request.method, route, String(reply.statusCode)]);
    duration.observe([request.method, route], reply.elapsedTime / 1000);
    done();
  });

  app.setErrorHandler(httpErrorHandler);
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send(errorBody('BUNRYU_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });

  app.get('/healthz', async () => ({ status: 'ok', service: opts.service }));
  app.get('/readyz', async (_request, reply) => {
    const checks: Record<string, string> = {};
    let ready = true;
    for (const c of opts.readiness ?? []) {
      try {
        await c.check();
        checks[c.name] = 'ok';
      } catch (err) {
        ready = false;
        checks[c.name] = err instanceof Error ? err.message : String(err);
      }
    }
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', service: opts.service, checks });
  });
  app.get('/metrics', async (_request, reply) => {
    return reply.type(registry.contentType).send(await (opts.metrics ?? (() => registry.metrics()))());
  });
  return app;
}
