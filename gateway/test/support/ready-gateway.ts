import type { ConfigSnapshot } from '@bunryu/core';
import { tapEvents, type EventTap } from './event-tap.ts';
import { startFakeExperimentService, type FakeExperimentService } from './fake-experiment-service.ts';
import { startGateway, until, type TestGateway } from './gateway.ts';

export interface ReadyGateway {
  es: FakeExperimentService;
  gw: TestGateway;
  /** The event log's tap, when asked for. */
  tap: EventTap;
  close(): Promise<void>;
}

/** A gateway serving `config` from a fake experiment-service, its snapshot loaded, and a tap on its event log. */
export async function startReadyGateway(config: ConfigSnapshot, env: Record<string, string> = {}): Promise<ReadyGateway> {
  const es = await startFakeExperimentService(config);
  const gw = await startGateway({ experimentService: es.url, env });
  const tap = await tapEvents(gw);
  await until(() => gw.deps.store.current !== null);
  return {
    es,
    gw,
    tap,
    async close() {
      await tap.close();
      await gw.close();
      await es.close();
    },
  };
}
