import { connect } from 'node:net';
import { ResponseParser } from '../../src/proxy/response-parser.ts';

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface Conversation {
  answers: Answer[];
  /** Everything the server sent, as text. */
  text: string;
  /** The server closed the connection. */
  closed: boolean;
}

/**
 * Writes `bytes` on one connection and reads answers until `count` are complete (then keeps
 * reading for `lingerMs` to see whether the server closes) or the server closes.
 */
export function converse(
  port: number,
  bytes: string | string[],
  count: number,
  opts: { lingerMs?: number; heads?: boolean[]; /** Wait this long between pieces, so each reaches the server as a read of its own. */ gapMs?: number } = {},
): Promise<Conversation> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const parser = new ResponseParser(4 * 1024 * 1024);
    const answers: Answer[] = [];
    let text = '';
    let finished = false;
    const next = () => parser.reset(opts.heads?.[answers.length] ?? false);
    next();
    const finish = (closed: boolean) => {
      if (finished) return;
      finished = true;
      socket.destroy();
      resolve({ answers, text, closed });
    };
    const take = (chunk: Buffer) => {
      while (chunk.length > 0 && answers.length < count) {
        if (!parser.execute(chunk)) return;
        const headers: Record<string, string> = {};
        for (let i = 0; i < parser.headers.length; i += 2) headers[parser.headers[i]!] = parser.headers[i + 1]!;
        answers.push({ status: parser.status, headers, body: parser.body.toString() });
        // What followed this answer in the same chunk is the next one.
        chunk = parser.excess ?? Buffer.alloc(0);
        next();
      }
    };
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      take(chunk);
      if (answers.length >= count) setTimeout(() => finish(false), opts.lingerMs ?? 100);
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', reject);
    const pieces = Array.isArray(bytes) ? bytes : [bytes];
    if (!opts.gapMs) for (const b of pieces) socket.write(b, 'latin1');
    else {
      socket.setNoDelay(true);
      let i = 0;
      const writeNext = () => {
        if (finished || i >= pieces.length) return;
        socket.write(pieces[i++]!, 'latin1');
        setTimeout(writeNext, opts.gapMs);
      };
      socket.once('connect', writeNext);
    }
  });
}

