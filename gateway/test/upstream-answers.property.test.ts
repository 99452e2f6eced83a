import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { converse } from './support/converse.ts';
import { startReadyGateway, type ReadyGateway } from './support/ready-gateway.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';

/**
 * Whatever well-formed answer an upstream gives, framed by length, by chunks or by closing, and
 * however its bytes are cut, the client gets the same status, body and end-to-end headers, and
 * none of the upstream's hop-by-hop ones: on both of the gateway's HTTP servers.
 */

interface GeneratedAnswer {
  status: number;
  headers: [string, string][];
  framing: 'length' | 'chunked' | 'close';
  body: string;
  /** Chunk sizes for 'chunked' (the rest of the body goes in one last chunk). */
  chunks: number[];
  /** A header the upstream's Connection field names: hop-by-hop, never forwarded. */
  named: boolean;
  /** Fractions of the answer's length at which the upstream cuts its writes. */
  cuts: number[];
}

const valueArb = fc.stringMatching(/^[\x21-\x7e]([\x21-\x7e ]{0,16}[\x21-\x7e])?$/);

const answerArb: fc.Arbitrary<GeneratedAnswer> = fc.record({
  status: fc.constantFrom(200, 201, 202, 203, 204, 206, 304, 400, 404, 409, 418, 422, 429, 500, 503),
  headers: fc.array(
    fc.oneof(
      fc.tuple(fc.stringMatching(/^x-u-[a-z0-9]{1,8}$/), valueArb),
      fc.tuple(fc.constant('set-cookie'), fc.stringMatching(/^[a-z]{1,6}=[a-z0-9]{0,8}; Path=\/$/)),
      fc.tuple(fc.constantFrom('content-type', 'cache-control', 'etag', 'vary'), valueArb),
    ),
    { maxLength: 6 },
  ),
  framing: fc.constantFrom('length', 'chunked', 'close'),
  body: fc.stringMatching(/^[ -~]{0,200}$/),
  chunks: fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 5 }),
  named: fc.boolean(),
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 }),
});

const hasBody = (a: GeneratedAnswer) => a.status !== 204 && a.status !== 304;

function answerBytes(a: GeneratedAnswer): string {
  let head = `HTTP/1.1 ${a.status} Whatever\r\n`;
  for (const [name, value] of a.headers) head += `${name}: ${value}\r\n`;
  // Hop-by-hop fields the gateway must drop, whatever the framing.
  head += 'keep-alive: timeout=5\r\nproxy-authenticate: Basic\r\n';
  if (a.named) head += 'x-hop: secret\r\n';
  const connection = [a.named ? 'x-hop' : '', a.framing === 'close' ? 'close' : ''].filter(Boolean).join(', ');
  if (connection) head += `connection: ${connection}\r\n`;
  if (!hasBody(a)) return `${head}\r\n`;
  switch (a.framing) {
    case 'length':
      return `${head}content-length: ${a.body.length}\r\n\r\n${a.body}`;
    case 'close':
      return `${head}\r\n${a.body}`;
    case 'chunked': {
      let out = `${head}transfer-encoding: chunked\r\n\r\n`;
      let at = 0;
      for (const size of a.chunks) {
        if (at >= a.body.length) break;
        const piece = a.body.slice(at, at + size);
        out += `${piece.length.toString(16)};ext=1\r\n${piece}\r\n`;
        at += piece.length;
      }
      if (at < a.body.length) out += `${(a.body.length - at).toString(16)}\r\n${a.body.slice(at)}\r\n`;
      return `${out}0\r\n\r\n`;
    }
  }
}

/**
 * An upstream on raw TCP that answers `GET /<n>` with the bytes of answers[n], written in pieces,
 * and closes the connection after an answer framed by closing.
 */
function rawUpstream(answers: Map<number, GeneratedAnswer>): Server {
  return createServer((socket: Socket) => {
    let pending = '';
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let end: number;
      // The gateway sends GETs without a body.
      while ((end = pending.indexOf('\r\n\r\n')) !== -1) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        const n = Number(/^GET \/(\d+) /.exec(head)?.[1]);
        const answer = answers.get(n);
        if (answer === undefined) {
          socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
          return;
        }
        const bytes = answerBytes(answer);
        const points = [...new Set(answer.cuts.map((f) => Math.floor(f * bytes.length)))].filter((p) => p > 0 && p < bytes.length).sort((a, b) => a - b);
        let from = 0;
        const pieces: string[] = [];
        for (const p of points) {
          pieces.push(bytes.slice(from, p));
          from = p;
        }
        pieces.push(bytes.slice(from));
        const writeNext = () => {
          const piece = pieces.shift();
          if (piece === undefined) {
            if (answer.framing === 'close' && hasBody(answer)) socket.end();
            return;
          }
          socket.write(piece, 'latin1');
          setTimeout(writeNext, 1);
        };
        writeNext();
      }
    });
  });
}

describe.each(['own', 'node'] as const)('upstream answers through the gateway (%s HTTP server)', (httpServer) => {
  const answers = new Map<number, GeneratedAnswer>();
  let upstream: Server;
  let ready: ReadyGateway;

  beforeAll(async () => {
    upstream = rawUpstream(answers);
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    ready = await startReadyGateway(snapshot(1, [route('raw', url)], [experiment('ranker', 'raw')]), { GATEWAY_HTTP_SERVER: httpServer });
  });

  afterAll(async () => {
    await ready?.close();
    upstream?.close();
  });

  it('reach the client with their status, body and end-to-end headers, and no hop-by-hop ones', async () => {
    const port = Number(new URL(ready.gw.url).port);
    let next = 0;
    await fc.assert(
      fc.asyncProperty(answerArb, async (answer) => {
        const n = next++;
        answers.set(n, answer);
        const c = await converse(port, `GET /v1/routes/raw/${n} HTTP/1.1\r\nHost: gw\r\nx-unit-id: u-${n}\r\n\r\n`, 1, { lingerMs: 0 });
        const got = c.answers[0]!;
        expect(got.status).toBe(answer.status);
        expect(got.body).toBe(hasBody(answer) ? answer.body : '');
        // Every end-to-end field, in order (set-cookie may repeat), with its value.
        const lines = c.text.slice(0, c.text.indexOf('\r\n\r\n')).split('\r\n').slice(1);
        const fields = lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as const);
        const upstreamNames = new Set(answer.headers.map(([name]) => name));
        expect(fields.filter(([name]) => upstreamNames.has(name))).toEqual(answer.headers);
        const names = fields.map(([name]) => name);
        expect(names).not.toContain('x-hop');
        expect(names).not.toContain('proxy-authenticate');
        expect(names).not.toContain('transfer-encoding');
        expect(fields.find(([name]) => name === 'keep-alive')?.[1]).not.toBe('timeout=5');
        expect(got.headers['x-ab-assignments']).toMatch(/^ranker=(control|treatment)$/);
        if (hasBody(answer)) expect(got.headers['content-length']).toBe(String(answer.body.length));
        answers.delete(n);
      }),
      { numRuns: 100 },
    );
  });
});
