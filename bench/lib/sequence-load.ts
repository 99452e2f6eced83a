/**
 * Load where each keep-alive connection opens with one request and then repeats another (wrk and
 * autocannon send one kind per connection): a client that calls a route and then posts its
 * events on the same connection. Runs in a child process of its own, as the other load
 * generators do, and counts the repeated requests answered.
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface SequenceLoadOptions {
  port: number;
  /** The raw bytes of the request each connection opens with (not counted). */
  first: string;
  /** The raw bytes of the request each connection then repeats, one at a time. */
  then: string;
  seconds: number;
  connections?: number;
}

export interface SequenceLoadResult {
  rps: number;
  total: number;
  /** Answers other than 2xx (the opening one included). */
  non2xx: number;
}

export function sequenceLoad(o: SequenceLoadOptions): Promise<SequenceLoadResult> {
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), JSON.stringify(o)];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout) as SequenceLoadResult)));
  });
}

/** Each answer's end: these benches' answers carry a content-length. */
function drive(o: SequenceLoadOptions): Promise<SequenceLoadResult> {
  let total = 0;
  let non2xx = 0;
  let stopping = false;
  const sockets = Array.from({ length: o.connections ?? 50 }, () => {
    const socket = connect(o.port, '127.0.0.1');
    let pending = '';
    let opened = false;
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end !== -1; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (pending.length < end + 4 + length) return;
        pending = pending.slice(end + 4 + length);
        if (!/^HTTP\/1\.1 2/.test(head)) non2xx++;
        if (opened && !stopping) total++;
        opened = true;
        if (!stopping) socket.write(o.then, 'latin1');
      }
    });
    socket.write(o.first, 'latin1');
    return socket;
  });
  return new Promise((resolve) =>
    setTimeout(() => {
      stopping = true;
      for (const s of sockets) s.destroy();
      resolve({ rps: total / o.seconds, total, non2xx });
    }, o.seconds * 1000),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await drive(JSON.parse(process.argv[2]!) as SequenceLoadOptions);
  process.stdout.write(JSON.stringify(result));
}
