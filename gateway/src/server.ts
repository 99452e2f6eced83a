import cluster from 'node:cluster';
import { runService } from '@bunryu/platform';
import { buildApp } from './app.ts';
import { runPrimary } from './cluster/primary.ts';
import { WorkerEventLink } from './cluster/worker-link.ts';
import { compose } from './compose.ts';
import { readConfig } from './config.ts';

const WORKER_CONFIG_WAIT_MS = 15_000;

const config = readConfig();
if (config.GATEWAY_WORKERS > 1 && cluster.isPrimary) {
  await runPrimary(config);
} else if (cluster.isWorker && config.BUNRYU_GATEWAY_WORKER) {
  const link = new WorkerEventLink();
  const deps = await compose(config, { events: link });
  const app = await buildApp(config, deps, { clusterMetrics: () => link.clusterMetrics() });
  link.metricsFrom(app.metrics);
  // The cluster hands connections to every listening worker: one listening before it has a config
  // would answer 503 beside a sibling answering 200. Without any config it listens anyway, unready.
  await deps.store.loaded(WORKER_CONFIG_WAIT_MS);
  // Without its primary a worker cannot log events: stop taking requests.
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  await runService('gateway', { app, close: deps.close }, { host: config.HOST, port: config.PORT });
} else {
  const deps = await compose(config);
  const app = await buildApp(config, deps);
  await runService('gateway', { app, close: deps.close }, { host: config.HOST, port: config.PORT });
}
