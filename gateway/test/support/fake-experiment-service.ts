import Fastify from 'fastify';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConfigSnapshot } from '@bunryu/core';

export interface FakeExperimentService {
  url: string;
  /** Bearer tokens sent to /v1/config and /v1/config/stream. */
  authorizations: (string | undefined)[];
  /** Statuses /v1/config answered (304 when If-None-Match named the current version). */
  configStatuses: number[];
  /** Serves this snapshot from now on and pushes it to every open stream. */
  publish(snapshot: ConfigSnapshot): void;
  streams(): number;
  close(): Promise<void>;
}

/** What the gateway needs of the experiment-service: `/v1/config` and its SSE stream. */
export async function startFakeExperimentService(initial: ConfigSnapshot, port = 0): Promise<FakeExperimentService> {
  let current = initial;
  const open = new Set<ServerResponse>();
  const authorizations: (string | undefined)[] = [];
  const configStatuses: number[] = [];
  const app = Fastify({ logger: false, forceCloseConnections: true });
  app.get('/v1/config', async (request, reply) => {
    authorizations.push(request.headers.authorization);
    const etag = `"${current.version}"`;
    void reply.header('etag', etag);
    if (request.headers['if-none-match'] === etag) {
      configStatuses.push(304);
      return reply.code(304).send();
    }
    configStatuses.push(200);
    return current;
  });
  app.get('/v1/config/stream', (request, reply) => {
    authorizations.push(request.headers.authorization);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(': hello\n\n');
    res.write(`event: snapshot\ndata: ${JSON.stringify(current)}\n\n`);
    open.add(res);
    res.on('close', () => open.delete(res));
  });
  await app.listen({ port, host: '127.0.0.1' });
  return {
    url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    authorizations,
    configStatuses,
    publish(snapshot) {
      current = snapshot;
      for (const res of open) res.write(`event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
    },
    streams: () => open.size,
    async close() {
      for (const res of open) res.destroy();
      await app.close();
    },
  };
}
