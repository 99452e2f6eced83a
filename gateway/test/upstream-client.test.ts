import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpOrigin, UpstreamFailure, type ForwardRequest } from '../src/proxy/upstream-client.ts';
import { closedPort } from './support/upstream.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));

interface Counted {
  url: string;
  /** Connections accepted so far. */
  connections: () => number;
  /** Connections open now. */
  open: () => number;
  close(): Promise<void>;
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function counting(server: HttpServer | NetServer, scheme: 'http' | 'https'): Promise<Counted> {
  let accepted = 0;
  const sockets = new Set<Socket>();
  server.on(scheme === 'https' ? 'secureConnection' : 'connection', (socket: Socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const counted: Counted = {
        url: `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`,
        connections: () => accepted,
        open: () => sockets.size,
        close: () =>
          new Promise((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      };
      cleanup.push(counted.close);
      resolve(counted);
    }),
  );
}

/** A node:http upstream answering with `handle`. */
function httpUpstream(handle: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<Counted> {
  const server = createHttpServer((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => handle(req, body, res));
  });
  server.keepAliveTimeout = 60_000;
  return counting(server, 'http');
}

/** An upstream that answers every request with exactly these bytes. */
function rawUpstream(answer: (request: string, socket: Socket) => void): Promise<Counted> {
  const server = createNetServer((socket) => {
    let seen = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      seen += c;
      const end = seen.indexOf('\r\n\r\n');
      if (end === -1) return;
      const request = seen.slice(0, end + 4);
      seen = seen.slice(end + 4);
      answer(request, socket);
    });
    socket.on('error', () => {});
  });
  return counting(server, 'http');
}

function origin(url: string, options: Partial<ConstructorParameters<typeof HttpOrigin>[1]> = {}): HttpOrigin {
  const client = new HttpOrigin(url, { connections: 16, ...options });
  cleanup.push(() => client.close());
  return client;
}

const get = (path = '/', headers: string[] = []): ForwardRequest => ({ method: 'GET', path, headers, body: null });
const echo = (req: IncomingMessage, body: string, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json', 'x-seen-host': req.headers.host ?? '' });
  res.end(JSON.stringify({ method: req.method, url: req.url, body, headers: req.headers }));
};

describe('HttpOrigin', () => {
  it('sends method, path, host, headers and body, and returns status, lowercase headers and body', async () => {
    const up = await httpUpstream(echo);
    const client = origin(up.url);
    const res = await client.request({ method: 'POST', path: '/m/predict?x=1', headers: ['X-Custom', 'a b', 'content-type', 'application/json'], body: Buffer.from('{"é":1}') }, 1000);
    expect(res.status).toBe(200);
    expect(res.headers).toContain('x-seen-host');
    const seen = JSON.parse(res.body.toString());
    expect(seen).toMatchObject({ method: 'POST', url: '/m/predict?x=1', body: Buffer.from('{"é":1}').toString('latin1') });
    expect(seen.headers).toMatchObject({ host: new URL(up.url).host, 'x-custom': 'a b', 'content-length': '8' });
  });

  it('sends content-length: 0 for an empty POST, and none for a GET', async () => {
    const up = await httpUpstream(echo);
    const client = origin(up.url);
    const post = JSON.parse((await client.request({ method: 'POST', path: '/', headers: [], body: null }, 1000)).body.toString());
    const plain = JSON.parse((await client.request(get(), 1000)).body.toString());
    expect(post.headers['content-length']).toBe('0');
    expect(plain.headers['content-length']).toBeUndefined();
  });

  it('keeps one connection alive across sequential requests, HEAD and 204 included', async () => {
    const up = await httpUpstream((req, _body, res) => {
      if (req.url === '/empty') return res.writeHead(204).end();
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }).end(req.method === 'HEAD' ? undefined : 'hello');
    });
    const client = origin(up.url);
    for (let i = 0; i < 10; i++) {
      expect((await client.request(get(), 1000)).body.toString()).toBe('hello');
      const head = await client.request({ method: 'HEAD', path: '/', headers: [], body: null }, 1000);
      expect(head.body.length).toBe(0);
      expect((await client.request(get('/empty'), 1000)).status).toBe(204);
    }
    expect(up.connections()).toBe(1);
  });

  it('opens no more connections than allowed; the rest wait their turn', async () => {
    const up = await httpUpstream((_req, body, res) => setTimeout(() => res.end(body), 20));
    const client = origin(up.url, { connections: 3 });
    const bodies = await Promise.all(Array.from({ length: 12 }, (_, i) => client.request({ method: 'POST', path: '/', headers: [], body: `r${i}` }, 2000)));
    expect(bodies.map((b) => b.body.toString())).toEqual(Array.from({ length: 12 }, (_, i) => `r${i}`));
    expect(up.connections()).toBe(3);
  });

  it('reads a chunked answer and one that ends with the connection', async () => {
    const up = await rawUpstream((request, socket) => {
      if (request.startsWith('GET /chunked')) socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
      else socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
    });
    const client = origin(up.url);
    expect((await client.request(get('/chunked'), 1000)).body.toString()).toBe('abcde');
    expect((await client.request(get('/chunked'), 1000)).body.toString()).toBe('abcde');
    expect(up.connections()).toBe(1);
    expect((await client.request(get('/close'), 1000)).body.toString()).toBe('until the end');
    expect((await client.request(get('/chunked'), 1000)).body.toString()).toBe('abcde');
    expect(up.connections()).toBe(2);
  });

  it('does not reuse a connection the answer closed, nor one past its Keep-Alive hint', async () => {
    const up = await rawUpstream((request, socket) => {
      if (request.startsWith('GET /close')) socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok');
      // timeout=1 leaves nothing once the 1 s margin is taken off: never reused.
      else socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok');
    });
    const client = origin(up.url);
    await client.request(get('/close'), 1000);
    await client.request(get('/close'), 1000);
    expect(up.connections()).toBe(2);
    await client.request(get('/hint'), 1000);
    await client.request(get('/hint'), 1000);
    expect(up.connections()).toBe(4);
  });

  it('drops a connection the upstream closed while idle and answers the next request on a new one', async () => {
    const up = await rawUpstream((_request, socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      setTimeout(() => socket.end(), 30);
    });
    const client = origin(up.url, { keepAliveMs: 60_000 });
    await client.request(get(), 1000);
    await new Promise((r) => setTimeout(r, 150));
    expect(up.open()).toBe(0);
    expect(client.size).toBe(0);
    expect((await client.request(get(), 1000)).status).toBe(200);
    expect(up.connections()).toBe(2);
  });

  it('fails with kind "timeout" at the deadline, and closes that connection', async () => {
    const up = await rawUpstream((_request, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf'));
    const client = origin(up.url);
    const err = await client.request(get(), 100).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamFailure);
    expect((err as UpstreamFailure).kind).toBe('timeout');
    await new Promise((r) => setTimeout(r, 50));
    expect(up.open()).toBe(0);
  });

  it('counts the wait for a free connection against the deadline', async () => {
    const up = await httpUpstream((_req, _body, res) => setTimeout(() => res.end('late'), 300));
    const client = origin(up.url, { connections: 1 });
    const first = client.request(get(), 1000);
    const second = await client.request(get(), 100).catch((e: unknown) => e);
    expect((second as UpstreamFailure).kind).toBe('timeout');
    expect((await first).body.toString()).toBe('late');
    expect(up.connections()).toBe(1);
  });

  it('answers at the deadline from a stopped upstream process, whose full accept queue leaves connects hanging', async () => {
    // A process that listens with a backlog of 1 and is then stopped (SIGSTOP): the kernel
    // completes a handshake or two, then drops SYNs, so later connects neither succeed nor fail.
    const child = spawn(process.execPath, ['-e', "require('node:net').createServer(() => {}).listen(0, '127.0.0.1', 1, function () { console.log(this.address().port) })"], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(async () => {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await once(child, 'exit');
    });
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    child.kill('SIGSTOP');
    const client = origin(`http://127.0.0.1:${Number(line.toString())}`, { connections: 4 });
    const timeoutMs = 150;
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const started = performance.now();
        const err = await client.request(get(), timeoutMs).catch((e: unknown) => e);
        return { kind: (err as UpstreamFailure).kind, ms: performance.now() - started };
      }),
    );
    expect(outcomes.map((o) => o.kind)).toEqual(Array.from({ length: 12 }, () => 'timeout'));
    // Each at its own deadline, whether connecting, waiting for a connection or for an answer.
    for (const o of outcomes) expect(o.ms).toBeLessThan(timeoutMs + 1000);
  });

  it('fails with kind "failed" when refused, cut off mid-answer, or sent a malformed answer', async () => {
    const refused = origin(`http://127.0.0.1:${await closedPort()}`);
    const cut = origin((await rawUpstream((_r, socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf'))).url);
    const garbled = origin((await rawUpstream((_r, socket) => socket.write('SPDY/3 200 OK\r\n\r\n'))).url);
    for (const [client, message] of [
      [refused, /ECONNREFUSED/],
      [cut, /closed the connection before the answer was complete/],
      [garbled, /bad status line/],
    ] as const) {
      const err = await client.request(get(), 1000).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UpstreamFailure);
      expect((err as UpstreamFailure).kind).toBe('failed');
      expect((err as Error).message).toMatch(message);
    }
  });

  it('reaches an https upstream, checking its certificate', async () => {
    const server = createHttpsServer({ key: fixture('upstream-tls.key'), cert: fixture('upstream-tls.crt') }, (req, res) => echo(req, '', res));
    const up = await counting(server, 'https');
    const trusted = origin(up.url, { tls: { ca: fixture('upstream-tls.crt') } });
    for (let i = 0; i < 3; i++) expect(JSON.parse((await trusted.request(get('/tls'), 2000)).body.toString()).url).toBe('/tls');
    expect(up.connections()).toBe(1);
    const untrusted = origin(up.url);
    const err = await untrusted.request(get(), 2000).catch((e: unknown) => e);
    expect((err as UpstreamFailure).kind).toBe('failed');
    expect((err as Error).message).toMatch(/self[- ]signed/i);
  });

  it('close() answers the request in flight, fails the waiting ones, and closes every connection', async () => {
    const up = await httpUpstream((_req, _body, res) => setTimeout(() => res.end('done'), 100));
    const client = new HttpOrigin(up.url, { connections: 1 });
    const inFlight = client.request(get(), 1000);
    const waiting = client.request(get(), 1000).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    const closed = client.close();
    expect((await waiting as Error).message).toMatch(/closed/);
    expect((await inFlight).body.toString()).toBe('done');
    await closed;
    expect(client.size).toBe(0);
    await expect(client.request(get(), 1000)).rejects.toThrow(/closed/);
  });
});
