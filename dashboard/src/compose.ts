import type { Config } from './config.ts';
import { SessionStore } from './session/session-store.ts';
import { UpstreamClient } from './proxy/upstream-client.ts';

/**
 * The composition root. The dashboard keeps its sessions in memory (a restart signs everyone
 * out, which is the safe failure) and reaches the other services over HTTP.
 */
export async function compose(config: Readonly<Config>) {
  return {
    sessions: new SessionStore({ idleMs: config.SESSION_IDLE_MINUTES * 60_000 }),
    experimentService: new UpstreamClient('experiment-service', config.EXPERIMENT_SERVICE_URL, config.UPSTREAM_TIMEOUT_MS),
    aggregator: new UpstreamClient('aggregator', config.AGGREGATOR_URL, config.UPSTREAM_TIMEOUT_MS),
    modelServer: new UpstreamClient('model-server', config.MODEL_SERVER_URL, config.UPSTREAM_TIMEOUT_MS),
    close: async () => {},
  };
}
export type Deps = Awaited<ReturnType<typeof compose>>;
