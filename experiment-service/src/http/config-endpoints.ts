import type { ConfigSnapshots } from '../config-snapshot/config-snapshots.ts';
import type { ConfigStream } from '../config-snapshot/config-stream.ts';
import { ConfigSnapshot } from '@bunryu/core';
import { endpoint, type Endpoint } from './endpoint.ts';

export function configEndpoints(snapshots: ConfigSnapshots, stream: ConfigStream): Endpoint<never>[] {
  return [
    endpoint({
      method: 'GET',
      url: '/v1/config',
      operationId: 'getConfig',
      summary: 'The config snapshot gateways and the aggregator use; ETag is its version, If-None-Match with it answers 304',
      role: 'viewer',
      response: ConfigSnapshot,
      alsoAnswers: { 304: 'Not modified' },
      handler: async ({ request, reply }) => {
        const p = await snapshots.latest();
        void reply.header('etag', p.etag).header('cache-control', 'no-cache');
        if (matchesEtag(request.headers['if-none-match'], p.etag)) return reply.code(304).send();
        return reply.type('application/json; charset=utf-8').send(p.json);
      },
    }),
    endpoint({
      method: 'GET',
      url: '/v1/config/stream',
      operationId: 'streamConfig',
      summary:
        'Server-sent events: `event: snapshot` (id = version, data = the snapshot JSON) at once and after every change, from any replica; `: heartbeat` comments keep the connection alive',
      role: 'viewer',
      produces: 'text/event-stream',
      handler: async ({ request, reply }) => {
        const first = await snapshots.latest();
        reply.hijack();
        stream.attach(reply.raw, first, { 'x-request-id': String(request.id) });
        return reply;
      },
    }),
  ] as Endpoint<never>[];
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((t) => {
    const tag = t.trim().replace(/^W\//, '');
    return tag === '*' || tag === etag;
  });
}
