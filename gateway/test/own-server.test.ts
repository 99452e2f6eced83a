import { createServer as createHttpServer } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeParser } from '../src/proxy/http1/node-parser.ts';
import { RawHttpServer } from '../src/proxy/http1/own-server.ts';
import { headersObject } from '../src/proxy/http1/wire.ts';
import type { RouteProxy } from '../src/proxy/route-proxy.ts';
import { inPieces, rawExchange } from '@bunryu/platform/testing';
import { converse } from './support/converse.ts';
import { startFakeExperimentService, type FakeExperimentService } from './support/fake-experiment-service.ts';
import { startGateway, until, type TestGateway } from './support/gateway.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';
import { startUpstream, type Behaviour, type TestUpstream } from './support/upstream.ts';

const echoBack: Behaviour = (req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ upstream: 'echo', method: req.method, url: req.url, body: req.body }));
};

const routeGet = (extra = '') => `GET /v1/routes/recommend/predict HTTP/1.1\r\nHost: gw\r\nx-unit-id: u-1\r\n${extra}\r\n`;

describe("the gateway's own HTTP server", () => {
  let upstream: TestUpstream;
  let es: FakeExperimentService;
  let gw: TestGateway;
  let port: number;

  beforeAll(async () => {
    upstream = await startUpstream('main');
    es = await startFakeExperimentService(snapshot(1, [route('recommend', upstream.url, { path: '/m' })], [experiment('ranker', 'recommend')]));
    gw = await startGateway({ experimentService: es.url });
    port = Number(new URL(gw.url).port);
    await until(() => gw.deps.store.current !== null);
  });

  afterAll(async () => {
    await gw?.close();
    await es?.close();
    await upstream?.close();
  });

  it('lets a client still uploading read 413 and 431 on a connection node:http serves, too', async () => {
    const size = 3 * 1024 * 1024;
    const big = await rawExchange(port, [`POST /v1/assign HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`, ...inPieces(Buffer.alloc(size, 32), 64 * 1024)], 2);
    expect(big.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(big.end).toBe('fin');
    const route = await rawExchange(port, ['GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n', `POST /v1/routes/recommend/p HTTP/1.1\r\nHost: gw\r\nContent-Length: ${size}\r\n\r\n`, ...inPieces(Buffer.alloc(size, 32), 64 * 1024)], 2);
    expect(route.answer).toMatch(/HTTP\/1\.1 413 /);
    expect(route.end).toBe('fin');
    const long = await rawExchange(port, inPieces(`GET /healthz HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${'a'.repeat(70 * 1024)}\r\n\r\n`, 8 * 1024));
    expect(long.answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(long.end).toBe('fin');
  });

  it('serves a connection that starts with a route, other requests on it through fastify, in order', async () => {
    const assign = JSON.stringify({ route: 'recommend', unitId: 'u-1' });
    const c = await converse(
      port,
      routeGet() +
        'GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n' +
        `POST /v1/assign HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: ${assign.length}\r\n\r\n${assign}` +
        'GET /v1/routes/nope/x HTTP/1.1\r\nHost: gw\r\nx-request-id: mine-1\r\n\r\n',
      4,
      { lingerMs: 50 },
    );
    expect(c.answers.map((a) => a.status)).toEqual([200, 200, 200, 404]);
    expect(JSON.parse(c.answers[0]!.body)).toMatchObject({ upstream: 'echo', url: '/m/predict' });
    expect(c.answers[0]!.headers['x-ab-assignments']).toMatch(/^ranker=/);
    expect(JSON.parse(c.answers[2]!.body).assignments[0]).toMatchObject({ experiment: 'ranker' });
    expect(c.answers[3]!.headers['x-request-id']).toBe('mine-1');
    expect(JSON.parse(c.answers[3]!.body).error.code).toBe('BUNRYU_NOT_FOUND');
    for (const a of c.answers) {
      expect(a.headers.connection).toBe('keep-alive');
      expect(a.headers.date).toMatch(/GMT$/);
    }
    // Its framing headers are lowercase; node:http's are not (the next test).
    expect(c.text).toContain('\r\nconnection: keep-alive\r\n');
    expect(c.closed).toBe(false);
  });

  it('hands a connection that starts with anything else to node:http, which serves routes too', async () => {
    const c = await converse(port, ['GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n', routeGet()], 2, { lingerMs: 50 });
    expect(c.answers.map((a) => a.status)).toEqual([200, 200]);
    expect(c.answers[1]!.headers['x-ab-assignments']).toMatch(/^ranker=/);
    expect(c.text).toContain('Connection: keep-alive');
    expect(c.closed).toBe(false);
  });

  it('node:http answers routes with a length: a 1.0 client asking for keep-alive keeps its connection', async () => {
    const c = await converse(
      port,
      'GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n' +
        'GET /v1/routes/recommend/predict HTTP/1.0\r\nHost: gw\r\nx-unit-id: u-1\r\nConnection: keep-alive\r\n\r\n' +
        routeGet(),
      3,
      { lingerMs: 50 },
    );
    expect(c.answers.map((a) => [a.status, a.headers.connection, a.headers['content-length'] === String(Buffer.byteLength(a.body))])).toEqual([
      [200, 'keep-alive', true],
      [200, 'keep-alive', true],
      [200, 'keep-alive', true],
    ]);
    expect(c.text).not.toContain('chunked');
    expect(c.closed).toBe(false);
  });

  it('node:http sends the 100 Continue of a request queued behind another before its answer', async () => {
    // The queued request's answer is ready while the one ahead of it still waits for the upstream.
    upstream.behave((req, res) => {
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ upstream: 'echo', method: req.method, url: req.url, body: req.body }));
      };
      if (req.url.endsWith('/slow')) setTimeout(answer, 100);
      else answer();
    });
    try {
      const c = await converse(
        port,
        'GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n' +
          'GET /v1/routes/recommend/slow HTTP/1.1\r\nHost: gw\r\nx-unit-id: u-1\r\n\r\n' +
          'POST /v1/routes/recommend/p HTTP/1.1\r\nHost: gw\r\nx-unit-id: u-1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok',
        3,
      );
      expect(c.answers.map((a) => a.status)).toEqual([200, 200, 200]);
      expect(c.text.indexOf('HTTP/1.1 100 Continue')).toBeLessThan(c.text.lastIndexOf('HTTP/1.1 200 OK'));
      expect(JSON.parse(c.answers[2]!.body)).toMatchObject({ upstream: 'echo', method: 'POST', body: 'ok' });
    } finally {
      upstream.behave(echoBack);
    }
  });

  it('decides on a request line that arrives a byte at a time', async () => {
    const c = await converse(port, routeGet().split(''), 1);
    expect(c.answers[0]!.status).toBe(200);
    expect(c.text).toContain('\r\nconnection: keep-alive\r\n');
  });

  it('answers what came before a malformed request, then 400, and closes', async () => {
    const c = await converse(port, routeGet() + 'NOT HTTP AT ALL\r\n\r\n', 2);
    expect(c.answers.map((a) => a.status)).toEqual([200, 400]);
    expect(c.answers[1]!.headers.connection).toBe('close');
    expect(c.closed).toBe(true);
  });

  it('answers a client pipelining too far ahead up to the limit, then closes', async () => {
    // One in flight and 16 waiting; the 18th and after are not read.
    const c = await converse(port, Array.from({ length: 20 }, () => routeGet()).join(''), 20);
    expect(c.answers.map((a) => a.status)).toEqual(Array.from({ length: 17 }, () => 200));
    expect(c.answers.at(-1)!.headers.connection).toBe('close');
    expect(c.answers.at(-2)!.headers.connection).toBe('keep-alive');
    expect(c.closed).toBe(true);
  });

  it('answers 413 to a body over 1 MiB, declared or chunked, and closes', async () => {
    const declared = await converse(port, `POST /v1/routes/recommend/p HTTP/1.1\r\nHost: gw\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`, 1);
    expect(declared.answers[0]!.status).toBe(413);
    expect(JSON.parse(declared.answers[0]!.body).error.code).toBe('BUNRYU_PAYLOAD_TOO_LARGE');
    expect(declared.closed).toBe(true);
    const piece = 'a'.repeat(64 * 1024);
    const chunks = Array.from({ length: 17 }, () => `${piece.length.toString(16)}\r\n${piece}\r\n`);
    const chunked = await converse(port, [`POST /v1/routes/recommend/p HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n`, ...chunks], 1);
    expect(chunked.answers[0]!.status).toBe(413);
    expect(chunked.closed).toBe(true);
  });

  it('forwards a chunked body whole, and more than 32 header fields', async () => {
    const many = Array.from({ length: 40 }, (_, i) => `x-field-${i}: v${i}\r\n`).join('');
    const c = await converse(
      port,
      `POST /v1/routes/recommend/p HTTP/1.1\r\nHost: gw\r\nx-unit-id: u-2\r\n${many}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
      1,
    );
    expect(c.answers[0]!.status).toBe(200);
    const seen = upstream.seen.at(-1)!;
    expect(seen.body).toBe('hello world');
    expect(seen.headers['x-field-0']).toBe('v0');
    expect(seen.headers['x-field-39']).toBe('v39');
    expect(seen.headers['x-ab-unit']).toBe('u-2');
  });

  it('sends 100 Continue to a client that expects it, then the answer', async () => {
    const c = await converse(port, `POST /v1/routes/recommend/p HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok`, 1);
    expect(c.text.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n')).toBe(true);
    expect(upstream.seen.at(-1)!.body).toBe('ok');
  });

  it('answers HEAD without a body, and closes after an HTTP/1.0 request without keep-alive', async () => {
    const head = await converse(port, 'HEAD /v1/routes/recommend/p HTTP/1.1\r\nHost: gw\r\n\r\n', 1, { heads: [true], lingerMs: 50 });
    expect(head.answers[0]!.status).toBe(200);
    expect(head.text.endsWith('\r\n\r\n')).toBe(true);
    const old = await converse(port, 'GET /v1/routes/recommend/p HTTP/1.0\r\nHost: gw\r\n\r\n', 1);
    expect(old.answers[0]!.headers.connection).toBe('close');
    expect(old.closed).toBe(true);
  });

  it('survives a client that leaves before its answer', async () => {
    upstream.behave((_req, res) => setTimeout(() => res.end('{"late":true}'), 100));
    try {
      const socket = connect(port, '127.0.0.1');
      socket.write(routeGet());
      await new Promise((r) => setTimeout(r, 20));
      socket.destroy();
      await new Promise((r) => setTimeout(r, 150));
    } finally {
      upstream.behave(echoBack);
    }
    expect((await converse(port, routeGet(), 1)).answers[0]!.status).toBe(200);
  });

  it('closes idle connections when the gateway closes, so closing does not wait on them', async () => {
    const other = await startGateway({ experimentService: es.url });
    await until(() => other.deps.store.current !== null);
    const socket = connect(Number(new URL(other.url).port), '127.0.0.1');
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.on('error', () => {});
    socket.write(routeGet());
    await new Promise((r) => socket.once('data', r));
    const started = Date.now();
    await other.close();
    await closed;
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe.each([true, false])('RawHttpServer on its own (parser consuming the socket: %s)', (consume) => {
  /** A server whose "proxy" echoes the URL and body, with node:http behind it for other connections. */
  async function serve(options: { requestTimeoutMs?: number } = {}) {
    const node = createHttpServer((_req, res) => res.end('node'));
    const proxy = {
      serve: (req: { url: string }, reply: { send(s: number, h: string[], b: Buffer | string): void }, _id: string, body: Buffer | null) =>
        setTimeout(() => reply.send(200, ['x-url', req.url], body ?? ''), 1),
    };
    const raw = new RawHttpServer({
      target: {
        proxy: proxy as unknown as RouteProxy,
        handler: (_req, res) => {
          res.statusCode = 204;
          res.end();
        },
        closing: false,
        raw: null,
      },
      parser: nodeParser.module!,
      keepAliveTimeoutMs: 60_000,
      consume,
      ...options,
    });
    const server = createNetServer((socket: Socket) => raw.accept(socket, (s) => node.emit('connection', s)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      port: (server.address() as AddressInfo).port,
      close: () => {
        raw.closeIdle();
        server.close();
      },
    };
  }

  it('answers pipelined requests in order, bodies chunked or not, and a malformed one with 400', async () => {
    const s = await serve();
    try {
      const c = await converse(
        s.port,
        [
          'POST /v1/routes/r/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none',
          'POST /v1/routes/r/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\nGET /health HTTP/1.1\r\n\r\n',
          'BROKEN\r\n\r\n',
        ],
        4,
      );
      expect(c.answers.map((a) => [a.status, a.headers['x-url'], a.body])).toEqual([
        [200, '/v1/routes/r/a', 'one'],
        [200, '/v1/routes/r/b', 'two'],
        [204, undefined, ''],
        [400, undefined, 'Bad Request'],
      ]);
      expect(c.closed).toBe(true);
    } finally {
      s.close();
    }
  });

  it('sends a queued request its 100 Continue in its turn, after the answers ahead of it', async () => {
    const s = await serve();
    try {
      const c = await converse(
        s.port,
        ['GET /v1/routes/r/a HTTP/1.1\r\nHost: x\r\n\r\nPOST /v1/routes/r/b HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n', 'ok'],
        2,
        { gapMs: 50 },
      );
      expect(c.answers.map((a) => [a.status, a.headers['x-url'], a.body])).toEqual([
        [200, '/v1/routes/r/a', ''],
        [200, '/v1/routes/r/b', 'ok'],
      ]);
      const continued = c.text.indexOf('HTTP/1.1 100 Continue');
      expect(continued).toBeGreaterThan(c.text.indexOf('HTTP/1.1 200'));
      expect(continued).toBeLessThan(c.text.lastIndexOf('HTTP/1.1 200'));
    } finally {
      s.close();
    }
  });

  it('answers 431 to a head over the size limit, after the requests before it, and closes', async () => {
    const s = await serve();
    try {
      const c = await converse(s.port, ['GET /v1/routes/r/a HTTP/1.1\r\nHost: x\r\n\r\n', `GET /v1/routes/r/b HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`], 2, { gapMs: 5 });
      expect(c.answers.map((a) => [a.status, a.headers.connection])).toEqual([
        [200, 'keep-alive'],
        [431, 'close'],
      ]);
      expect(c.closed).toBe(true);
    } finally {
      s.close();
    }
  });

  it('answers 408 and closes when a request does not arrive whole in time', async () => {
    const s = await serve({ requestTimeoutMs: 300 });
    try {
      const c = await converse(s.port, 'GET /v1/routes/r/p HTTP/1.1\r\nHost: gw\r\nx-slow: ', 1);
      expect(c.answers[0]!.status).toBe(408);
      expect(c.closed).toBe(true);
    } finally {
      s.close();
    }
  });

  it('lets a client still uploading read its 413 and 431: the close lingers instead of resetting', async () => {
    const s = await serve();
    try {
      const size = 3 * 1024 * 1024;
      const big = await rawExchange(s.port, [`POST /v1/routes/r/p HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`, ...inPieces(Buffer.alloc(size, 97), 64 * 1024)], 2);
      expect(big.answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(big.end).toBe('fin');
      const head = `GET /v1/routes/r/p HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'a'.repeat(70 * 1024)}\r\n\r\n`;
      const long = await rawExchange(s.port, inPieces(head, 8 * 1024));
      expect(long.answer).toMatch(/^HTTP\/1\.1 431 /);
      expect(long.end).toBe('fin');
    } finally {
      s.close();
    }
  });
});

describe('headersObject', () => {
  it('builds the header object node:http would', () => {
    expect(headersObject(['Cookie', 'a=1', 'cookie', 'b=2', 'X-Multi', '1', 'x-multi', '2', 'Content-Type', 'text/a', 'content-type', 'text/b', 'Set-Cookie', 's=1'])).toEqual({
      cookie: 'a=1; b=2',
      'x-multi': '1, 2',
      'content-type': 'text/a',
      'set-cookie': ['s=1'],
    });
  });
});
