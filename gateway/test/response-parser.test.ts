import { describe, expect, it } from 'vitest';
import { ResponseParseError, ResponseParser } from '../src/proxy/response-parser.ts';

interface Parsed {
  complete: boolean;
  status: number;
  headers: string[];
  body: string;
  keepAlive: boolean;
  keepAliveMs: number | null;
  overrun: boolean;
  endsWithClose: boolean;
}

/** Feeds `wire` in the given pieces; the answer as parsed. */
function parse(wire: string, cuts: number[] = [], opts: { head?: boolean; max?: number } = {}): Parsed {
  const parser = new ResponseParser(opts.max ?? 1024 * 1024);
  parser.reset(opts.head ?? false);
  const bytes = Buffer.from(wire, 'latin1');
  let complete = false;
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut <= from && cut !== bytes.length) continue;
    // Bytes after the end arrive as more pieces too: they must still count as an overrun.
    complete = parser.execute(bytes.subarray(from, cut)) || complete;
    from = cut;
  }
  return {
    complete,
    status: parser.status,
    headers: parser.headers,
    body: complete || parser.endsWithClose ? parser.body.toString('latin1') : '',
    keepAlive: parser.keepAlive,
    keepAliveMs: parser.keepAliveMs,
    overrun: parser.overrun,
    endsWithClose: parser.endsWithClose,
  };
}

const answers: Record<string, { wire: string; head?: boolean; expect: Partial<Parsed> }> = {
  'content-length': {
    wire: 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nKeep-Alive: timeout=5\r\n\r\n{"ok":true}',
    expect: { complete: true, status: 200, headers: ['content-type', 'application/json', 'content-length', '11', 'keep-alive', 'timeout=5'], body: '{"ok":true}', keepAlive: true, keepAliveMs: 4000 },
  },
  'chunked, with extensions and trailers': {
    wire: 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1A\r\n abcdefghijklmnopqrstuvwxy\r\n0\r\nX-Checksum: 1\r\n\r\n',
    expect: { complete: true, status: 201, body: 'hello abcdefghijklmnopqrstuvwxy', keepAlive: true },
  },
  'body until the connection closes': {
    wire: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstreamed to the end',
    expect: { complete: false, endsWithClose: true, body: 'streamed to the end', keepAlive: false },
  },
  'HEAD: a length but no body': {
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n',
    head: true,
    expect: { complete: true, body: '', keepAlive: true },
  },
  '204 and 304 have no body': {
    wire: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n',
    expect: { complete: true, status: 304, body: '' },
  },
  '1xx answers are skipped': {
    wire: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    expect: { complete: true, status: 200, headers: ['content-length', '2'], body: 'ok' },
  },
  'Connection: close': {
    wire: 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
    expect: { complete: true, keepAlive: false },
  },
  'HTTP/1.0 is closed unless kept alive': {
    wire: 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok',
    expect: { complete: true, keepAlive: false },
  },
  'HTTP/1.0 with keep-alive': {
    wire: 'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok',
    expect: { complete: true, keepAlive: true },
  },
  'both framings: chunked wins, the connection is not reused': {
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    expect: { complete: true, body: 'ok', keepAlive: false },
  },
  'bytes past the end': {
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA',
    expect: { complete: true, body: 'ok', overrun: true },
  },
  'empty header value and a status line without reason': {
    wire: 'HTTP/1.1 200\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n',
    expect: { complete: true, status: 200, headers: ['x-empty', '', 'content-length', '0'], body: '' },
  },
};

describe('ResponseParser', () => {
  it.each(Object.entries(answers))('%s, whole and split at every byte', (_name, { wire, head, expect: expected }) => {
    const whole = parse(wire, [], { head });
    expect(whole).toMatchObject(expected);
    for (let cut = 1; cut < wire.length; cut++) expect(parse(wire, [cut], { head })).toEqual(whole);
    expect(parse(wire, Array.from({ length: wire.length }, (_, i) => i + 1), { head })).toEqual(whole);
  });

  it('is reusable for the next answer on the same connection', () => {
    const parser = new ResponseParser(1024);
    for (const body of ['first', 'second']) {
      parser.reset(false);
      expect(parser.execute(Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`))).toBe(true);
      expect(parser.body.toString()).toBe(body);
    }
  });

  const malformed: Record<string, string> = {
    'a status line that is not HTTP/1.x': 'HTTP/2 200 OK\r\n\r\n',
    'a status code out of range': 'HTTP/1.1 099 Odd\r\n\r\n',
    'obsolete line folding': 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n',
    'a header line without a colon': 'HTTP/1.1 200 OK\r\nnot a header\r\n\r\n',
    'a header name with a space': 'HTTP/1.1 200 OK\r\nX A: 1\r\n\r\n',
    'a bare CR in a header value': 'HTTP/1.1 200 OK\r\nX-A: 1\rSet-Cookie: a=b\r\nContent-Length: 0\r\n\r\n',
    'a NUL in a header value': 'HTTP/1.1 200 OK\r\nX-A: 1\u0000\r\nContent-Length: 0\r\n\r\n',
    'a content-length that is not a number': 'HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n',
    'two different content-lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok',
    'a chunk size that is not hex': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'chunk data not followed by CRLF': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX',
    '101 Switching Protocols': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n',
  };

  it.each(Object.entries(malformed))('refuses %s', (_name, wire) => {
    expect(() => parse(wire)).toThrow(ResponseParseError);
  });

  it('refuses a head beyond 64 KiB, and a body beyond its bound whether announced or not', () => {
    const big = 'HTTP/1.1 200 OK\r\n' + `X-Big: ${'a'.repeat(70 * 1024)}\r\n`;
    expect(() => parse(big)).toThrow(/head larger/);
    expect(() => parse('HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n', [], { max: 100 })).toThrow(/larger than 100/);
    expect(() => parse(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n${'a'.repeat(101)}\r\n0\r\n\r\n`, [], { max: 100 })).toThrow(/larger than 100/);
    expect(() => parse(`HTTP/1.1 200 OK\r\n\r\n${'a'.repeat(101)}`, [], { max: 100 })).toThrow(/larger than 100/);
  });
});
