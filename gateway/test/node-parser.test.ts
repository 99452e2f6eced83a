import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { loadNodeParser, nodeParser, probeParser, type ParserModule } from '../src/proxy/http1/node-parser.ts';

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
