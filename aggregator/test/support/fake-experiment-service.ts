import { createServer, type Server } from 'node:http';
import type { ConfigSnapshot, Experiment } from '@bunryu/core';

/**
 * A stand-in for the experiment-service's `GET /v1/config` (SPEC §4): bearer auth, ETag and 304,
 * and a snapshot the test can change or take away (503) at will.
 */
export interface FakeExperimentService {
  url: string;
  snapshot: ConfigSnapshot | null;
  requests: number;
  stop(): Promise<void>;
}

export async function fakeExperimentService(token: string, snapshot: ConfigSnapshot): Promise<FakeExperimentService> {
  const state: FakeExperimentService = { url: '', snapshot, requests: 0, stop: async () => {} };
  const server: Server = createServer((req, res) => {
    state.requests++;
    if (req.headers.authorization !== `Bearer ${token}`) return void res.writeHead(401).end('{"error":{"code":"BUNRYU_UNAUTHORIZED","message":"no"}}');
    if (req.url !== '/v1/config' || !state.snapshot) return void res.writeHead(state.snapshot ? 404 : 503).end();
    const etag = `"${state.snapshot.version}"`;
    if (req.headers['if-none-match'] === etag) return void res.writeHead(304, { etag }).end();
    res.writeHead(200, { 'content-type': 'application/json', etag }).end(JSON.stringify(state.snapshot));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  state.stop = () => new Promise((resolve) => server.close(() => resolve()));
  return state;
}

export function experiment(key: string, variants: { key: string; weight: number }[], metrics: Experiment['metrics'], status: Experiment['status'] = 'running'): Experiment {
  return {
    key,
    route: 'recommend',
    layer: key,
    trafficPercent: 100,
    allocation: { start: 0, end: 10_000 },
    salt: '',
    targeting: [],
    variants: variants.map((v) => ({ ...v, params: {} })),
    overrides: {},
    metrics,
    status,
    version: 1,
    createdAt: '2026-11-01T00:00:00.000Z',
    updatedAt: '2026-11-01T00:00:00.000Z',
  };
}

export function snapshot(version: number, experiments: Experiment[], metrics: Record<string, unknown>): ConfigSnapshot {
  return { version, routes: {}, experiments, metrics, holdout: null, events: {} };
}
