import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LogSink } from '@bunryu/platform';
import { loadNodeParser, nodeParser, probeParser, type ParserModule } from '../src/proxy/http1/node-parser.ts';
import { converse } from './support/converse.ts';
import { startReadyGateway, type ReadyGateway } from './support/ready-gateway.ts';
import { experiment, route, snapshot } from './support/snapshots.ts';
import { startUpstream, type TestUpstream } from './support/upstream.ts';

const real = createRequire(import.meta.url)('_http_common') as ParserModule;

describe("node's internal HTTP parser, checked before the own server uses it", () => {
  it('behaves on this Node as the own server expects', () => {
    expect(probeParser(real)).toBeNull();
    expect(nodeParser.unavailable).toBeNull();
    expect(nodeParser.module).not.toBeNull();
  });

  it('is refused when the module cannot be loaded or lacks a piece', () => {
    expect(loadNodeParser(() => {
      throw new Error('gone');
    })).toMatchObject({ module: null, unavailable: expect.stringContaining('cannot be loaded') });
    expect(loadNodeParser(() => ({ methods: real.methods }))).toMatchObject({ module: null, unavailable: expect.stringContaining('no HTTPParser') });
    const { kOnExecute: _gone, ...lacking } = real.HTTPParser;
    const withoutExecuteCallback = Object.assign(function HTTPParser() {}, lacking);
    expect(loadNodeParser(() => ({ HTTPParser: withoutExecuteCallback, methods: real.methods }))).toMatchObject({ unavailable: expect.stringContaining('kOnExecute') });
  });

  it('is refused when its method table no longer matches the numbers it reports', () => {
    const shifted = { HTTPParser: real.HTTPParser, methods: [...real.methods].reverse() };
    expect(probeParser(shifted)).toMatch(/callback 2: expected "headers 1.1 POST/);
    expect(loadNodeParser(() => shifted)).toMatchObject({ module: null, unavailable: expect.stringContaining('behaves differently') });
  });

  it('is refused when its callbacks come in another order or with other arguments', () => {
    /** A parser that has every function, but hands the body over as (buffer, start, length) and completes before it. */
    class Reordered {
      [callback: number]: unknown;
      initialize() {}
      close() {}
      execute(data: Buffer): number {
        const { HTTPParser } = real;
        const call = (k: number, ...args: unknown[]) => (this[k] as (...a: unknown[]) => unknown)(...args);
        if (data.toString('latin1').startsWith('POST')) {
          call(HTTPParser.kOnMessageBegin);
          call(HTTPParser.kOnHeadersComplete, 1, 1, ['Host', 'a', 'Content-Length', '5'], real.methods.indexOf('POST'), '/v1/routes/probe/p?q=1', 0, '', false, true);
          call(HTTPParser.kOnMessageComplete);
          call(HTTPParser.kOnBody, data, data.length - 2, 2);
        }
        return data.length;
      }
    }
    const fake = { HTTPParser: Object.assign(Reordered, real.HTTPParser) as unknown as ParserModule['HTTPParser'], methods: real.methods };
    expect(probeParser(fake)).toMatch(/callback 3: expected "body he", got "complete"/);
  });
});

/** A log sink that keeps the warnings it is given (the app would point it at its own muted logger). */
class WarningSink extends LogSink {
  readonly warnings: string[] = [];

  constructor() {
    super('gateway', true);
  }

  override use(): void {}

  override warn(obj: object, msg: string): void {
    this.warnings.push(msg);
  }
}

describe('a gateway whose parser failed the check', () => {
  const shifted = loadNodeParser(() => ({ HTTPParser: real.HTTPParser, methods: [...real.methods].reverse() }));
  const sink = new WarningSink();
  let upstream: TestUpstream;
  let ready: ReadyGateway;

  beforeAll(async () => {
    upstream = await startUpstream('main');
    ready = await startReadyGateway(snapshot(1, [route('recommend', upstream.url, { path: '/m' })], [experiment('ranker', 'recommend')]), {}, { app: { httpParser: shifted }, logger: sink });
  });

  afterAll(async () => {
    await ready?.close();
    await upstream?.close();
  });

  it('says so once, and serves route connections through node:http, bodies and pipelining included', async () => {
    expect(sink.warnings).toEqual(["the gateway's own HTTP server is off: every connection goes through node:http"]);
    const c = await converse(
      Number(new URL(ready.gw.url).port),
      'POST /v1/routes/recommend/predict HTTP/1.1\r\nHost: gw\r\nx-unit-id: u-1\r\nContent-Length: 5\r\n\r\nhello' +
        'GET /v1/routes/recommend/predict HTTP/1.1\r\nHost: gw\r\nx-unit-id: u-1\r\n\r\n',
      2,
      { lingerMs: 50 },
    );
    expect(c.answers.map((a) => a.status)).toEqual([200, 200]);
    expect(upstream.seen.find((r) => r.method === 'POST')?.body).toBe('hello');
    // node:http writes its framing headers capitalised; the own server writes them in lowercase.
    expect(c.text).toContain('\r\nConnection: keep-alive\r\n');
    expect(c.text).not.toContain('\r\nconnection: keep-alive\r\n');
  });
});
