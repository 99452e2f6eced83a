import { createRequire } from 'node:module';
import type { Logger } from '@bunryu/platform';

/**
 * Node's HTTP/1 request parser (llhttp, the one node:http runs), which node exports only from an
 * internal module, `_http_common` (see README.md in this folder). The gateway's own server runs on
 * it; when it is missing or behaves otherwise than the server expects, every connection goes to
 * node:http, which serves routes too, only slower.
 */
export interface NodeHttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  /** Reads straight from a socket's handle, as node:http does: no Buffer, stream or 'data' event per read. */
  consume?(handle: object): void;
  unconsume?(): void;
  close(): void;
  [callback: number]: unknown;
}

export interface ParserModule {
  HTTPParser: {
    new (): NodeHttpParser;
    REQUEST: number;
    kOnMessageBegin: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
    kOnExecute: number;
  };
  methods: string[];
}

/** Where the parser comes from: node's internal module, or a test's stand-in. */
export type ParserSource = () => unknown;

export const nodeParserSource: ParserSource = () => createRequire(import.meta.url)('_http_common');

/**
 * The parser module if it has the shape and the behaviour the own server relies on, else null
 * after one warning (the gateway then serves every connection through node:http).
 */
export function usableParser(source: ParserSource, logger: Logger): ParserModule | null {
  let problem: string | null;
  let module: ParserModule | null = null;
  try {
    module = parserShape(source());
    problem = module === null ? 'HTTPParser or one of its callbacks is missing' : behaviourProblem(module);
  } catch (err) {
    problem = String(err);
  }
  if (problem === null) return module;
  logger.warn({ node: process.version, problem }, "node's internal HTTP parser is not as expected: every connection goes through node:http");
  return null;
}

function parserShape(m: unknown): ParserModule | null {
  const { HTTPParser: P, methods } = (m ?? {}) as { HTTPParser?: unknown; methods?: unknown };
  if (typeof P !== 'function' || !Array.isArray(methods)) return null;
  const statics = P as unknown as Record<string, unknown>;
  for (const k of ['REQUEST', 'kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute']) if (typeof statics[k] !== 'number') return null;
  const proto = (P as { prototype?: Record<string, unknown> }).prototype ?? {};
  for (const k of ['initialize', 'execute', 'close']) if (typeof proto[k] !== 'function') return null;
  return m as ParserModule;
}

/**
 * Two pipelined requests, the first with a body that arrives in two reads, and what the own
 * server expects to hear of them: the callbacks in this order, with these arguments.
 */
const CANNED = ['POST /v1/routes/check/x?q=1 HTTP/1.1\r\nHost: check\r\nContent-Length: 5\r\n\r\nhel', 'loGET /v1/routes/check/y HTTP/1.0\r\nX-A: 1\r\n\r\n'];
const EXPECTED = [
  'begin',
  'head 1.1 POST /v1/routes/check/x?q=1 ["Host","check","Content-Length","5"] upgrade=false keepAlive=true',
  'body hel',
  'execute',
  'body lo',
  'complete',
  'begin',
  'head 1.0 GET /v1/routes/check/y ["X-A","1"] upgrade=false keepAlive=false',
  'complete',
  'execute',
  'malformed',
].join('\n');

/** null when the parser does what the own server expects of it, else what differs. */
function behaviourProblem({ HTTPParser, methods }: ParserModule): string | null {
  const trace: string[] = [];
  const parser = new HTTPParser();
  try {
    parser.initialize(HTTPParser.REQUEST, {}, 16 * 1024, 0);
    parser[HTTPParser.kOnMessageBegin] = () => trace.push('begin');
    parser[HTTPParser.kOnHeaders] = (headers: string[], url: string) => trace.push(`headers ${JSON.stringify(headers)} ${url}`);
    parser[HTTPParser.kOnHeadersComplete] = (major: number, minor: number, headers: string[], method: number, url: string, _s: unknown, _m: unknown, upgrade: boolean, keepAlive: boolean) => {
      trace.push(`head ${major}.${minor} ${methods[method]} ${url} ${JSON.stringify(headers)} upgrade=${upgrade} keepAlive=${keepAlive}`);
      return 0;
    };
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => trace.push(`body ${chunk.toString('latin1')}`);
    parser[HTTPParser.kOnMessageComplete] = () => trace.push('complete');
    for (const part of CANNED) {
      const read = parser.execute(Buffer.from(part, 'latin1'));
      trace.push(read === part.length ? 'execute' : `execute returned ${String(read)}`);
    }
    // After a request line it cannot read, the parser answers an error instead of a count.
    trace.push(parser.execute(Buffer.from('NOT HTTP\r\n\r\n', 'latin1')) instanceof Error ? 'malformed' : 'malformed request accepted');
  } finally {
    parser.close();
  }
  const got = trace.join('\n');
  return got === EXPECTED ? null : `parsed a canned request as:\n${got}\nexpected:\n${EXPECTED}`;
}
