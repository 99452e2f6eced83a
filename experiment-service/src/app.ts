import type { FastifyInstance } from 'fastify';
import { Gauge, Histogram } from 'prom-client';
import { createHttpServer } from '@bunryu/platform';
import { strictestPolicy } from '@bunryu/core';
import { authenticatorFor } from '@bunryu/platform/auth';
import { ConfigCatalog } from './catalog/config-catalog.ts';
import type { Deps } from './compose.ts';
import type { Config } from './config.ts';
import { ConfigSnapshots } from './config-snapshot/config-snapshots.ts';
import { ConfigStream } from './config-snapshot/config-stream.ts';
import { ExperimentManager } from './experiments/experiment-manager.ts';
import { backupEndpoints } from './http/backup-endpoints.ts';
import { catalogEndpoints } from './http/catalog-endpoints.ts';
import { eventEndpoints } from './http/event-endpoints.ts';
import { EventCatalogue } from './events/event-catalogue.ts';
import { configEndpoints } from './http/config-endpoints.ts';
import { registerEndpoints, type Endpoint } from './http/endpoint.ts';
import { experimentEndpoints } from './http/experiment-endpoints.ts';
import { releaseEndpoints } from './http/release-endpoints.ts';
import { rolloutEndpoints } from './http/rollout-endpoints.ts';
import { Autopilot, httpWebhook } from './autopilot/autopilot.ts';
import { metaEndpoints } from './http/meta-endpoints.ts';
import { openApiDocument } from './openapi/openapi-document.ts';

export type { Deps } from './compose.ts';

export async function buildApp(config: Readonly<Config>, deps: Omit<Deps, 'storeKind'>): Promise<FastifyInstance> {
  const { store } = deps;
  const app = createHttpServer({
    service: 'experiment-service',
    logLevel: config.LOG_LEVEL,
    readiness: [{ name: 'store', check: () => store.ping() }],
  });

  // Actions such as start take no body; clients that still send `Content-Type: application/json`
  // with an empty body get the same answer as those that send none.
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined);
    else jsonParser(request, body as string, done);
  });

  const auth = authenticatorFor(config);
  const now = deps.now ?? (() => new Date());
  const experiments = new ExperimentManager(store, { now });
  const catalog = new ConfigCatalog(store, now);
  const events = new EventCatalogue(store, now);

  const configVersion = new Gauge({ name: 'bunryu_config_version', help: 'Version of the config snapshot this instance serves', registers: [app.metrics] });
  const buildSeconds = new Histogram({
    name: 'bunryu_config_snapshot_build_seconds',
    help: 'Time to read the store and build a config snapshot',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [app.metrics],
  });
  const snapshotBytes = new Gauge({ name: 'bunryu_config_snapshot_bytes', help: 'Size of the serialized config snapshot', registers: [app.metrics] });
  const snapshots = new ConfigSnapshots(store, {
    onBuilt: (p, seconds) => {
      configVersion.set(p.version);
      buildSeconds.observe(seconds);
      snapshotBytes.set(Buffer.byteLength(p.json));
    },
    onError: (err) => app.log.warn({ err }, 'config snapshot rebuild failed; serving the previous one'),
  });
  await snapshots.start();
  const stream = new ConfigStream(snapshots, { heartbeatMs: config.SSE_HEARTBEAT_SECONDS * 1000 });
  new Gauge({
    name: 'bunryu_config_stream_clients',
    help: 'Open /v1/config/stream connections',
    registers: [app.metrics],
    collect() {
      this.set(stream.size);
    },
  });
  // SSE connections never go idle: end them first, or closing the server would wait for them.
  app.addHook('preClose', async () => stream.close());
  app.addHook('onClose', async () => snapshots.close());

  const autopilot = deps.results
    ? new Autopilot({
        manager: experiments,
        results: deps.results,
        logger: app.log,
        servingIntervalMs: config.AUTOPILOT_SERVING_INTERVAL_MS,
        fullIntervalMs: config.AUTOPILOT_FULL_INTERVAL_MS,
        ...(config.BUNRYU_WEBHOOK_URL ? { webhook: httpWebhook(config.BUNRYU_WEBHOOK_URL) } : {}),
      })
    : null;
  if (autopilot) {
    app.addHook('onReady', async () => autopilot.start());
    app.addHook('preClose', async () => autopilot.stop());
  }

  let document: Record<string, unknown> | undefined;
  const endpoints: Endpoint<never>[] = [
    ...experimentEndpoints(experiments),
    ...rolloutEndpoints(experiments, autopilot),
    ...releaseEndpoints(experiments, store),
    ...catalogEndpoints(catalog, { catalogue: events, policy: strictestPolicy(config.BUNRYU_EVENT_POLICY) }),
    ...eventEndpoints(events, store),
    ...configEndpoints(snapshots, stream),
    ...backupEndpoints(store, snapshots),
    ...metaEndpoints(store, () => (document ??= openApiDocument(endpoints, INFO))),
  ];
  registerEndpoints(app, auth, endpoints);
  return app;
}

const INFO = {
  title: 'bunryu experiment-service',
  version: '1',
  license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
  description: 'Experiments, routes, metrics and the holdout; the config snapshot gateways and the aggregator read (SPEC §4).',
};
