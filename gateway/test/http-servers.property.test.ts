import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { converse, type Conversation } from './support/converse.ts';
import { startFakeExperimentService, type FakeExperimentService } from './support/fake-experiment-service.ts';
import { startGateway, until, type TestGateway } from './support/gateway.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';
import { startUpstream, type TestUpstream } from './support/upstream.ts';

/**
 * The gateway's own HTTP server (raw-http.ts) against node:http, its reference: the same bytes,
 * cut into the same pieces, sent to a gateway of each kind must reach the upstream as the same
 * requests and come back as the same answers.
 */

interface GeneratedRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body: { kind: 'none' } | { kind: 'length'; text: string } | { kind: 'chunked'; chunks: string[]; upper: boolean };
  close: boolean;
  /** HTTP/1.0 (kept alive by asking, and with no chunked body) instead of 1.1. */
  old: boolean;
  /** `Expect: 100-continue` before a body. */
  expect: boolean;
}

const token = (min: number, max: number) => fc.stringMatching(new RegExp(`^[a-z0-9]{${min},${max}}$`));
const caseOf = (name: string, upper: boolean) => (upper ? name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase()) : name);

const pathArb = fc
  .tuple(
    fc.constantFrom('recommend', 'rank', 'nope'),
    fc.array(fc.stringMatching(/^([A-Za-z0-9._~!$'()*+,;=:@-]|%[0-9A-F]{2}){1,12}$/), { maxLength: 3 }),
    fc.option(fc.stringMatching(/^[a-z0-9]{1,6}=([A-Za-z0-9._~-]|%[0-9A-F]{2}){0,8}(&[a-z0-9]{1,6}=[a-z0-9]{0,6}){0,2}$/), { nil: undefined }),
  )
  .map(([name, segments, query]) => `/v1/routes/${name}/${segments.join('/')}${query === undefined ? '' : `?${query}`}`);

// A field value as a client may send it: visible ASCII with inner spaces and tabs.
const valueArb = fc.stringMatching(/^[\x21-\x7e]([\x21-\x7e \t]{0,20}[\x21-\x7e])?$/);

const headersArb = fc
  .tuple(
    fc.boolean(),
    fc.stringMatching(/^[A-Za-z0-9._@-]{1,24}$/),
    fc.boolean(),
    fc.option(fc.constantFrom('JP', 'US', 'FR', '30'), { nil: undefined }),
    fc.array(fc.tuple(token(1, 10), valueArb), { maxLength: 5 }),
  )
  .map(([upper, unit, byCookie, country, extra]) => {
    const headers: [string, string][] = [[caseOf('host', upper), 'gw']];
    headers.push(byCookie ? [caseOf('cookie', upper), `theme=dark; ab_uid=${unit}`] : [caseOf('x-unit-id', upper), unit]);
    if (country !== undefined) headers.push([caseOf('x-ab-attr-country', upper), country]);
    for (const [name, value] of extra) headers.push([caseOf(`x-h-${name}`, upper), value]);
    return headers;
  });

const bodyArb: fc.Arbitrary<GeneratedRequest['body']> = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.string({ maxLength: 64 }).map((text) => ({ kind: 'length' as const, text: text.replace(/[^\x20-\x7e]/g, '.') })),
  fc.tuple(fc.array(fc.stringMatching(/^[ -~]{1,20}$/), { maxLength: 4 }), fc.boolean()).map(([chunks, upper]) => ({ kind: 'chunked' as const, chunks, upper })),
);

const routeRequestArb: fc.Arbitrary<Omit<GeneratedRequest, 'close'>> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'),
  path: pathArb,
  headers: headersArb,
  body: bodyArb,
  old: fc.boolean(),
  expect: fc.boolean(),
});

// The rest of the API, which a connection that began with a route hands to fastify.
const clientBodies = [
  '{"events":[{"type":"click","unitId":"u-1","route":"recommend","value":1}]}',
  '{"events":[{"type":"click","unitId":"u-1"},{"type":"Bad!","unitId":"u-2"},{"type":"exposure","unitId":"u-3"}]}',
  '{"unitId":"u-1","route":"recommend","attributes":{"country":"JP"}}',
  '{"unitId":"","route":"nope"}',
  '{"events":',
  '{"__proto__":{"x":1},"events":[]}',
  '',
];
const clientRequestArb: fc.Arbitrary<Omit<GeneratedRequest, 'close'>> = fc.record({
  method: fc.constantFrom('POST', 'POST', 'GET', 'PUT'),
  path: fc.constantFrom('/v1/events', '/v1/assign', '/healthz', '/readyz', '/nope', '/v1/events?x=1'),
  headers: fc
    .tuple(headersArb, fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', null))
    .map(([headers, type]) => (type === null ? headers : [...headers, ['content-type', type] as [string, string]])),
  body: fc.oneof(
    fc.constantFrom(...clientBodies).map((text) => ({ kind: 'length' as const, text })),
    fc.constantFrom(...clientBodies).map((text) => ({ kind: 'chunked' as const, chunks: text === '' ? [] : [text.slice(0, 7), text.slice(7)].filter(Boolean), upper: false })),
    fc.constant({ kind: 'none' as const }),
  ),
  old: fc.boolean(),
  expect: fc.boolean(),
});

const requestArb = fc.oneof({ weight: 3, arbitrary: routeRequestArb }, { weight: 1, arbitrary: clientRequestArb });

const pipelineArb = fc
  .tuple(fc.array(requestArb, { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([requests, closeLast]) =>
    requests.map((r, i): GeneratedRequest => ({
      ...r,
      // node:http closes after a 1.0 answer without a length even when asked to keep alive, and a
      // HEAD answer has none: the one known difference, left to node.
      old: r.old && r.method !== 'HEAD',
      // HTTP/1.0 has no chunked framing.
      body: r.old && r.body.kind === 'chunked' ? { kind: 'length', text: r.body.chunks.join('') } : r.body,
      close: closeLast && i === requests.length - 1,
    })),
  );

function serialize(r: GeneratedRequest, index: number): string {
  let head = `${r.method} ${r.path} HTTP/1.${r.old ? 0 : 1}\r\n`;
  for (const [name, value] of r.headers) head += `${name}: ${value}\r\n`;
  // Fixed ids: otherwise each server would make up its own.
  head += `x-request-id: req-${index}\r\n`;
  if (r.close) head += 'Connection: close\r\n';
  else if (r.old) head += 'Connection: keep-alive\r\n';
  if (r.expect && r.body.kind !== 'none') head += 'Expect: 100-continue\r\n';
  switch (r.body.kind) {
    case 'none':
      return `${head}\r\n`;
    case 'length':
      return `${head}Content-Length: ${r.body.text.length}\r\n\r\n${r.body.text}`;
    case 'chunked': {
      const { upper } = r.body;
      const chunks = r.body.chunks.map((c) => `${upper ? c.length.toString(16).toUpperCase() : c.length.toString(16)}\r\n${c}\r\n`).join('');
      return `${head}Transfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`;
    }
  }
}

/** `text` cut at the given fractions of its length. */
function cut(text: string, at: number[]): string[] {
  const points = [...new Set(at.map((f) => Math.floor(f * text.length)))].filter((p) => p > 0 && p < text.length).sort((a, b) => a - b);
  const pieces: string[] = [];
  let from = 0;
  for (const p of points) {
    pieces.push(text.slice(from, p));
    from = p;
  }
  pieces.push(text.slice(from));
  return pieces;
}

/** What must be equal: status, body, the gateway's own headers, and whether the connection was closed. */
function comparable(c: Conversation) {
  return {
    closed: c.closed,
    answers: c.answers.map((a) => ({
      status: a.status,
      body: a.body,
      headers: Object.fromEntries(['content-type', 'x-request-id', 'x-ab-assignments', 'x-upstream-name', 'set-cookie', 'connection'].map((n) => [n, a.headers[n]?.toLowerCase()])),
    })),
  };
}

describe('the own HTTP server and node:http, same bytes in', () => {
  let upstream: TestUpstream;
  let es: FakeExperimentService;
  let own: TestGateway;
  let node: TestGateway;

  beforeAll(async () => {
    // The echo shows everything the upstream received, headers included.
    upstream = await startUpstream('echo', (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req));
    });
    const routes = [route('recommend', upstream.url, { path: '/m' }), route('rank', upstream.url)];
    const experiments = [experiment('ranker', 'recommend'), experiment('blend', 'recommend', {
        targeting: [{ attribute: 'country', op: 'in', value: ['JP', 'US'] }],
        variants: [
          { key: 'control', weight: 50, params: { blend: 'a' } },
          { key: 'treatment', weight: 50, params: { blend: 'b' } },
        ],
      }), experiment('order', 'rank')];
    es = await startFakeExperimentService(snapshot(1, routes, experiments));
    own = await startGateway({ experimentService: es.url, env: { GATEWAY_HTTP_SERVER: 'own' } });
    node = await startGateway({ experimentService: es.url, env: { GATEWAY_HTTP_SERVER: 'node' } });
    await until(() => own.deps.store.current !== null && node.deps.store.current !== null);
  });

  afterAll(async () => {
    await own?.close();
    await node?.close();
    await es?.close();
    await upstream?.close();
  });

  it('forward the same requests and give the same answers, for pipelines cut anywhere', async () => {
    const ownPort = Number(new URL(own.url).port);
    const nodePort = Number(new URL(node.url).port);
    await fc.assert(
      fc.asyncProperty(pipelineArb, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), async (requests, at) => {
        const pieces = cut(requests.map(serialize).join(''), at);
        const opts = { heads: requests.map((r) => r.method === 'HEAD'), gapMs: 1, lingerMs: 30 };
        const [a, b] = await Promise.all([converse(ownPort, pieces, requests.length, opts), converse(nodePort, pieces, requests.length, opts)]);
        expect(comparable(a)).toEqual(comparable(b));
        // Everything is answered, unless an answer closed the connection (fastify does after some 400s).
        const closedAt = a.answers.findIndex((x) => x.headers.connection === 'close');
        expect(a.answers).toHaveLength(closedAt === -1 ? requests.length : closedAt + 1);
        // Not two servers that fail alike: every route request that names a route reached the upstream.
        requests.slice(0, a.answers.length).forEach((r, i) => {
          const answer = a.answers[i]!;
          if (!r.path.startsWith('/v1/routes/')) return;
          if (r.path.startsWith('/v1/routes/nope/')) return expect(answer.status).toBe(404);
          expect(answer.status).toBe(200);
          if (r.method === 'HEAD') return;
          const seen = JSON.parse(answer.body) as { method: string; body: string; headers: Record<string, string> };
          expect(seen.method).toBe(r.method);
          expect(seen.body).toBe(r.body.kind === 'none' ? '' : r.body.kind === 'length' ? r.body.text : r.body.chunks.join(''));
          expect(seen.headers['x-request-id']).toBe(`req-${i}`);
          expect(seen.headers['x-ab-assignments']).toBe(answer.headers['x-ab-assignments']);
        });
        if (requests.at(-1)!.close) expect(a.closed).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});
