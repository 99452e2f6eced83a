import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createHttpServer } from '../src/index.ts';
import { inPieces, rawExchange } from '../src/testing.ts';

let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  app = createHttpServer({ service: 'test', logLevel: 'silent' });
  app.post('/echo', async (req) => req.body);
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as AddressInfo).port;
});
afterAll(() => app.close());

describe('refusals a client can read (no reset)', () => {
  it('answers a 70 KiB Authorization header with 431 and closes with a FIN', async () => {
    const head = `GET /healthz HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${'a'.repeat(70 * 1024)}\r\n\r\n`;
    const r = await rawExchange(port, inPieces(head, 8 * 1024));
    expect(r.answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(r.end).toBe('fin');
  });

  it('answers a body over the limit sent without Expect: 100-continue with 413 and closes with a FIN', async () => {
    const size = 3 * 1024 * 1024;
    const head = `POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${size}\r\n\r\n`;
    const r = await rawExchange(port, [head, ...inPieces(Buffer.alloc(size, 32), 64 * 1024)], 2);
    expect(r.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(r.answer).toContain('BUNRYU_PAYLOAD_TOO_LARGE');
    expect(r.end).toBe('fin');
  });

  it('does the same for a chunked body that grows past the limit', async () => {
    const head = `POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`;
    const chunk = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(0x10000, 32), Buffer.from('\r\n')]);
    const r = await rawExchange(port, [head, ...Array.from({ length: 40 }, () => chunk), '0\r\n\r\n'], 2);
    expect(r.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(r.end).toBe('fin');
  });

  it('still closes a client that never stops sending, after a bound', async () => {
    const head = `POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 999999999\r\n\r\n`;
    const started = Date.now();
    const r = await rawExchange(port, [head, ...Array.from({ length: 4000 }, () => Buffer.alloc(64 * 1024, 32))], 1, 15_000);
    expect(r.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(r.end).not.toBe('timeout');
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
