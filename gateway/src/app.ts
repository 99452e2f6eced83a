import type { FastifyInstance } from 'fastify';
import { createHttpServer } from '@bunryu/platform';
import type { Config } from './config.ts';
import type { Deps } from './compose.ts';
import { clientKeyCheck } from './client/client-keys.ts';
import { clientRoutes } from './client/client-routes.ts';
import { GatewayMetrics } from './metrics/gateway-metrics.ts';
import { fastPathServerFactory, type FastPathTarget } from './proxy/fast-path.ts';
import { nodeParser, type NodeParser } from './proxy/http1/node-parser.ts';
import { proxyRoutes } from './proxy/proxy-routes.ts';
import { RouteProxy } from './proxy/route-proxy.ts';
import { ShadowCalls } from './proxy/shadow.ts';

export interface AppOptions {
  /**
   * Set in a cluster worker: /metrics serves this (every process's metrics, aggregated), and the
   * publisher's metrics come from the primary that holds it.
   */
  clusterMetrics?: () => Promise<string>;
  /** Node's request parser and the verdict of its start-up check (a test gives one that failed it). */
  httpParser?: NodeParser;
}

/**
 * The gateway (SPEC §4): `/v1/routes/:route/*`, `/v1/assign`, `/v1/events`, plus /healthz,
 * /readyz (ready once a config snapshot is loaded; Kafka being down does not make it unready, as
 * events then spill to disk) and /metrics.
 */
export async function buildApp(config: Readonly<Config>, deps: Deps, options: AppOptions = {}): Promise<FastifyInstance> {
  const fastPath: FastPathTarget = { proxy: null, handler: null, closing: false, raw: null };
  const parser = options.httpParser ?? nodeParser;
  const ownServer = config.GATEWAY_HTTP_SERVER === 'own';
  const app = createHttpServer({
    service: 'gateway',
    logLevel: config.LOG_LEVEL,
    readiness: [
      {
        name: 'config',
        check: () => {
          if (!deps.store.current) throw new Error('no config snapshot loaded yet (experiment-service unreachable and none persisted)');
        },
      },
    ],
    fastify: { serverFactory: fastPathServerFactory(fastPath, ownServer ? parser.module : null) },
    ...(options.clusterMetrics ? { metrics: options.clusterMetrics } : {}),
  });
  deps.logger.use(app.log);
  if (ownServer && parser.unavailable !== null) {
    deps.logger.warn({ reason: parser.unavailable }, "the gateway's own HTTP server is off: every connection goes through node:http");
  }
  const metrics = new GatewayMetrics(app.metrics, {
    ...(options.clusterMetrics ? {} : { publisher: () => deps.publisher.stats() }),
    config: () => deps.store.current,
    configStreamConnected: () => deps.subscriber.connected,
    refusedEpoch: () => deps.store.refusedEpoch !== null,
  });

  const shadows = new ShadowCalls(deps.publisher, metrics, config.GATEWAY_SHADOW_MAX_IN_FLIGHT);
  const proxy = new RouteProxy({
    store: deps.store,
    pools: deps.pools,
    publisher: deps.publisher,
    metrics,
    logger: deps.logger,
    clientKeys: config.BUNRYU_CLIENT_KEYS ? new Set(config.BUNRYU_CLIENT_KEYS) : null,
    shadows,
  });
  fastPath.proxy = proxy;
  app.addHook('preClose', async () => {
    fastPath.closing = true;
    fastPath.raw?.closeIdle();
  });
  // Requests answered before the close have their shadow pairs written before the event log closes.
  app.addHook('onClose', () => shadows.idle());

  // The route proxy checks client keys itself (the fast path never reaches fastify hooks).
  await app.register(proxyRoutes, { proxy });
  const checkKey = clientKeyCheck(config.BUNRYU_CLIENT_KEYS);
  await app.register(async (client) => {
    if (checkKey) client.addHook('onRequest', checkKey);
    await client.register(clientRoutes, {
      store: deps.store,
      publisher: deps.publisher,
      eventPolicy: {
        setting: config.BUNRYU_EVENT_POLICY,
        onViolation: (type, verdict, policy) => metrics.catalogueMismatch(type, verdict, policy),
      },
    });
  });
  return app;
}
