import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeParserSource, usableParser, type ParserModule, type ParserSource } from '../src/proxy/http1/node-parser.ts';
import { converse } from './helpers/converse.ts';
import { startFakeExperimentService, type FakeExperimentService } from './helpers/fake-experiment-service.ts';
import { startGateway, until, type TestGateway } from './helpers/gateway.ts';
import { experiment, route, snapshot } from './helpers/snapshots.ts';
import { startUpstream, type TestUpstream } from './helpers/upstream.ts';

/** A logger that keeps what it is given. */
function recordingLogger() {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, obj, msg });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

const real = createRequire(import.meta.url)('_http_common') as ParserModule;

/**
 * Node's parser as a later release might change it: every callback still there, but the method
 * and the URL of headers-complete swapped. Its shape is right; only its behaviour differs.
 */
const swappedArguments: ParserSource = () => {
  const { HTTPParser } = real;
  const slot = HTTPParser.kOnHeadersComplete;
  class Changed extends (HTTPParser as unknown as new () => object) {}
  Object.defineProperty(Changed.prototype, slot, {
    set(this: Record<string, unknown>, fn: (...args: unknown[]) => unknown) {
      this.wrapped = (major: unknown, minor: unknown, headers: unknown, method: unknown, url: unknown, ...rest: unknown[]) => fn(major, minor, headers, url, method, ...rest);
    },
    get(this: Record<string, unknown>) {
      return this.wrapped;
    },
  });
  Object.assign(Changed, HTTPParser);
  for (const k of ['REQUEST', 'kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute'] as const) {
    Object.defineProperty(Changed, k, { value: HTTPParser[k] });
  }
  return { HTTPParser: Changed, methods: real.methods };
};

describe("the start-up check of node's internal HTTP parser", () => {
  it("takes this Node's parser, without a word", () => {
    const logger = recordingLogger();
    expect(usableParser(nodeParserSource, logger)).not.toBeNull();
    expect(logger.lines).toEqual([]);
  });

  it('refuses a parser whose callbacks get other arguments, with one warning naming what differs', () => {
    const logger = recordingLogger();
    expect(usableParser(swappedArguments, logger)).toBeNull();
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]!.level).toBe('warn');
    expect((logger.lines[0]!.obj as { problem: string }).problem).toContain('head 1.1 undefined 3 ');
  });

  it('refuses a parser that is missing or has lost a callback, with one warning', () => {
    for (const source of [
      () => {
        throw new Error("Cannot find module '_http_common'");
      },
      () => ({ HTTPParser: class {}, methods: real.methods }),
    ]) {
      const logger = recordingLogger();
      expect(usableParser(source, logger)).toBeNull();
      expect(logger.lines.map((l) => l.level)).toEqual(['warn']);
    }
  });
});

describe('a gateway on a parser that fails the check', () => {
  let upstream: TestUpstream;
  let es: FakeExperimentService;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = await startUpstream('main');
    es = await startFakeExperimentService(snapshot(1, [route('recommend', upstream.url, { path: '/m' })], [experiment('ranker', 'recommend')]));
    gw = await startGateway({ experimentService: es.url, app: { httpParser: swappedArguments } });
    await until(() => gw.deps.store.current !== null);
  });

  afterAll(async () => {
    await gw?.close();
    await es?.close();
    await upstream?.close();
  });

  it('serves route connections through node:http, with their body', async () => {
    const c = await converse(
      Number(new URL(gw.url).port),
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
