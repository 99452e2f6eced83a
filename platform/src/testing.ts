import { connect } from 'node:net';

/**
 * Where an integration suite finds its real server. With BUNRYU_REQUIRE_INTEGRATION=1 (CI) an
 * unreachable server throws, failing the suite; otherwise the suite is skipped and says so.
 *
 *   const redis = await integrationServer('REDIS_URL', 'redis://127.0.0.1:6379');
 *   describe.skipIf(!redis.url)('redis store', ...)
 */
export async function integrationServer(envVar: string, fallback: string): Promise<{ url: string | undefined }> {
  const url = process.env[envVar] || fallback;
  const first = url.split(',')[0]!;
  const { hostname, port } = new URL(first.includes('://') ? first : `tcp://${first}`);
  const ok = await reachable(hostname, Number(port));
  if (ok) return { url };
  if (process.env.BUNRYU_REQUIRE_INTEGRATION === '1') {
    throw new Error(`${envVar}=${url} is not reachable and BUNRYU_REQUIRE_INTEGRATION=1: start it with infra/up.sh`);
  }
  process.stderr.write(`skipping the ${envVar} integration suite: ${url} is not reachable (infra/up.sh starts it)\n`);
  return { url: undefined };
}

function reachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export interface RawExchange {
  /** Everything the server sent, as latin1 text. */
  answer: string;
  /**
   * `fin`: the server ended the connection cleanly and took every piece sent after its answer;
   * otherwise the error (a reset: ECONNRESET, EPIPE) or `timeout`.
   */
  end: string;
}

/**
 * Sends `pieces` one after another on a fresh connection, `gapMs` apart, and goes on sending after
 * the answer and the server's FIN have come, as a client busy uploading does. A server that closes
 * with input still arriving resets the connection, and over a real network the reset can destroy
 * the answer before the client reads it.
 */
export function rawExchange(port: number, pieces: readonly (string | Buffer)[], gapMs = 5, timeoutMs = 5000): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let answer = '';
    let fin = false;
    let settled = false;
    const done = (end: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ answer, end });
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.on('end', () => (fin = true));
    socket.on('error', (err: Error & { code?: string }) => done(err.code ?? err.message));
    let i = 0;
    const sendNext = () => {
      if (settled) return;
      if (i >= pieces.length) {
        // Give a reset for the last piece time to come back.
        setTimeout(() => (fin ? done('fin') : socket.once('end', () => done('fin'))), 50);
        return;
      }
      socket.write(pieces[i++]!, () => setTimeout(sendNext, gapMs));
    };
    socket.once('connect', sendNext);
  });
}

/** A request head or body in pieces of `size` bytes. */
export function inPieces(text: string | Buffer, size: number): Buffer[] {
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1');
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}
