import { createRequire } from 'node:module';

/**
 * node's HTTP/1 request parser (llhttp, the one node:http runs), which node exports only from an
 * internal module. The own server (own-server.ts) relies on it; README.md beside this file lists
 * every internal it touches. Before it is used it must parse a canned exchange exactly as the
 * own server expects; otherwise the gateway serves every connection through node:http.
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

export type NodeParser = { module: ParserModule; unavailable: null } | { module: null; unavailable: string };

/** Loads `_http_common` and checks its shape, then its behaviour (probeParser). */
export function loadNodeParser(load: () => unknown = () => createRequire(import.meta.url)('_http_common')): NodeParser {
  let m: Partial<ParserModule>;
  try {
    m = load() as Partial<ParserModule>;
  } catch (err) {
    return { module: null, unavailable: `node's _http_common cannot be loaded (${String(err)})` };
  }
  const P = m?.HTTPParser as unknown as Record<string, unknown> | undefined;
  if (typeof P !== 'function' || !Array.isArray(m.methods)) return { module: null, unavailable: "node's _http_common has no HTTPParser or methods" };
  for (const k of ['REQUEST', 'kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute']) {
    if (typeof P[k] !== 'number') return { module: null, unavailable: `node's HTTPParser has no ${k}` };
  }
  const proto = (P as { prototype?: Record<string, unknown> }).prototype ?? {};
  for (const k of ['initialize', 'execute', 'close']) {
    if (typeof proto[k] !== 'function') return { module: null, unavailable: `node's HTTPParser has no ${k}()` };
  }
  const module = m as ParserModule;
  const differs = probeParser(module);
  return differs === null ? { module, unavailable: null } : { module: null, unavailable: `node's HTTPParser behaves differently: ${differs}` };
}

/** Two pipelined requests, the first with a body cut across two reads: what the own server sees most. */
const PROBE = ['POST /v1/routes/probe/p?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhe', 'lloGET /v1/routes/y HTTP/1.0\r\nX-A: b\r\n\r\n'];
const EXPECTED = [
  'begin',
  'headers 1.1 POST /v1/routes/probe/p?q=1 [Host,a,Content-Length,5] upgrade=false keepAlive=true',
  'body he',
  'body llo',
  'complete',
  'begin',
  'headers 1.0 GET /v1/routes/y [X-A,b] upgrade=false keepAlive=false',
  'complete',
];

/**
 * Parses PROBE through a fresh parser and compares the callbacks, in order and with their
 * arguments, with what the own server reads from them. Null when they agree, else the first
 * difference.
 */
export function probeParser({ HTTPParser, methods }: ParserModule): string | null {
  const seen: string[] = [];
  let parser: NodeHttpParser;
  try {
    parser = new HTTPParser();
    parser.initialize(HTTPParser.REQUEST, {}, 16 * 1024, 0);
  } catch (err) {
    return `a parser cannot be made (${String(err)})`;
  }
  let partialHeaders: string[] = [];
  let partialUrl = '';
  parser[HTTPParser.kOnMessageBegin] = () => {
    seen.push('begin');
  };
  parser[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
    partialHeaders.push(...headers);
    partialUrl += url;
  };
  parser[HTTPParser.kOnHeadersComplete] = (major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined, _s: unknown, _m: unknown, upgrade: boolean, keepAlive: boolean) => {
    const all = headers ?? partialHeaders;
    seen.push(`headers ${major}.${minor} ${methods[method]} ${url ?? partialUrl} [${all.join(',')}] upgrade=${upgrade} keepAlive=${keepAlive}`);
    partialHeaders = [];
    partialUrl = '';
    return 0;
  };
  parser[HTTPParser.kOnBody] = (chunk: unknown) => {
    seen.push(`body ${Buffer.isBuffer(chunk) ? chunk.toString('latin1') : `<${typeof chunk}>`}`);
  };
  parser[HTTPParser.kOnMessageComplete] = () => {
    seen.push('complete');
  };
  try {
    for (const part of PROBE) {
      const bytes = Buffer.from(part, 'latin1');
      const result = parser.execute(bytes);
      if (result !== bytes.length) return `execute() returned ${String(result)} for ${bytes.length} bytes`;
    }
  } catch (err) {
    return `execute() threw (${String(err)})`;
  } finally {
    parser.close();
  }
  for (let i = 0; i < Math.max(seen.length, EXPECTED.length); i++) {
    if (seen[i] !== EXPECTED[i]) return `callback ${i + 1}: expected "${EXPECTED[i] ?? '(none)'}", got "${seen[i] ?? '(none)'}"`;
  }
  return null;
}

/** This process's parser, checked once. */
export const nodeParser: NodeParser = loadNodeParser();
