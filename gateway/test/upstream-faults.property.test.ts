import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { converse, type Conversation } from './support/converse.ts';
import { startReadyGateway, type ReadyGateway } from './support/ready-gateway.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';

/**
 * An upstream that breaks an answer in any way (cut short, garbled, trailed by bytes nobody asked
 * for, too slow) costs that request a 502 or 504 and nothing else: the next requests, on
 * whichever pooled connection, get their own answers whole. A connection left out of step must
 * never be reused.
 */

type Fault = 'none' | 'cut' | 'garbage-head' | 'trailing-bytes' | 'slow' | 'reset';

interface Exchange {
  fault: Fault;
  /** Where a cut falls, as a fraction of the answer. */
  at: number;
  body: string;
  chunked: boolean;
}

const exchangeArb: fc.Arbitrary<Exchange> = fc.record({
  fault: fc.constantFrom<Fault>('none', 'none', 'cut', 'garbage-head', 'trailing-bytes', 'slow', 'reset'),
  at: fc.double({ min: 0, max: 0.99, noNaN: true }),
  body: fc.stringMatching(/^[a-z0-9 ]{0,80}$/),
  chunked: fc.boolean(),
});

// Far above what a local answer takes, even on a loaded CI machine.
const TIMEOUT_MS = 300;

function answer(n: number, e: Exchange): string {
  const body = JSON.stringify({ n, body: e.body });
  if (!e.chunked) return `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
  const half = Math.floor(body.length / 2);
  return `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${half.toString(16)}\r\n${body.slice(0, half)}\r\n${(body.length - half).toString(16)}\r\n${body.slice(half)}\r\n0\r\n\r\n`;
}

/**
 * Answers `GET /<n>` as exchanges[n] says, keeping the connection open unless the fault closes
 * it. Writes on one connection go out in order, one answer's after the previous one's.
 */
function faultyUpstream(exchanges: Map<number, Exchange>): Server {
  return createServer((socket: Socket) => {
    let pending = '';
    let written: Promise<void> = Promise.resolve();
    const later = (ms: number, bytes: string) => new Promise<void>((r) => setTimeout(() => (socket.writable && socket.write(bytes), r()), ms));
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) !== -1) {
        const n = Number(/^GET \/(\d+) /.exec(pending.slice(0, end))?.[1]);
        pending = pending.slice(end + 4);
        const e = exchanges.get(n);
        if (e === undefined) return void socket.destroy();
        const bytes = answer(n, e);
        written = written.then(async () => {
          switch (e.fault) {
            case 'none':
              socket.write(bytes);
              return;
            case 'cut':
              socket.end(bytes.slice(0, Math.floor(e.at * bytes.length)));
              return;
            case 'garbage-head':
              socket.write('HTTP/1.1 200 OK\r\nbroken header line\r\n\r\n');
              return;
            case 'trailing-bytes': {
              // A whole answer with the start of another one nobody asked for, whose rest comes
              // later: ahead of the answer to whatever is asked next on this connection.
              const stray = answer(n + 1_000_000, { ...e, fault: 'none' });
              const split = 1 + Math.floor(e.at * (stray.length - 1));
              socket.write(bytes + stray.slice(0, split));
              await later(20, stray.slice(split));
              return;
            }
            case 'slow':
              await later(TIMEOUT_MS * 3, bytes);
              return;
            case 'reset':
              socket.resetAndDestroy();
          }
        });
      }
    });
  });
}

describe.each(['own', 'node'] as const)('a faulty upstream (%s HTTP server)', (httpServer) => {
  const exchanges = new Map<number, Exchange>();
  let upstream: Server;
  let ready: ReadyGateway;

  beforeAll(async () => {
    upstream = faultyUpstream(exchanges);
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    // Few pooled connections, so that a poisoned one would be picked again soon.
    ready = await startReadyGateway(snapshot(1, [route('faulty', url, { timeoutMs: TIMEOUT_MS })], [experiment('ranker', 'faulty')]), { GATEWAY_HTTP_SERVER: httpServer, GATEWAY_UPSTREAM_CONNECTIONS: '2' });
  });

  afterAll(async () => {
    await ready?.close();
    upstream?.close();
  });

  it('costs the broken exchange alone a 502 or 504; every other request gets its own answer', async () => {
    const port = Number(new URL(ready.gw.url).port);
    let next = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(exchangeArb, { minLength: 1, maxLength: 6 }), async (list) => {
        const ns = list.map((e) => {
          const n = next++;
          exchanges.set(n, e);
          return n;
        });
        // One after another, each on a client connection of its own: the gateway's pooled upstream
        // connections are reused from one to the next (concurrent ones would also wait for a free
        // connection, and the route's deadline counts that wait).
        const answers: Conversation[] = [];
        for (const n of ns) answers.push(await converse(port, `GET /v1/routes/faulty/${n} HTTP/1.1\r\nHost: gw\r\nx-unit-id: u-${n}\r\n\r\n`, 1, { lingerMs: 0 }));
        list.forEach((e, i) => {
          const got = answers[i]!.answers[0]!;
          if (e.fault === 'none' || e.fault === 'trailing-bytes') {
            expect(got.status, `${e.fault} #${ns[i]}`).toBe(200);
            expect(JSON.parse(got.body)).toEqual({ n: ns[i], body: e.body });
          } else {
            expect(got.status, `${e.fault} #${ns[i]}`).toBe(e.fault === 'slow' ? 504 : 502);
          }
        });
        for (const n of ns) exchanges.delete(n);
      }),
      { numRuns: 25 },
    );
  });
});
