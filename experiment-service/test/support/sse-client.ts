import { request, type IncomingHttpHeaders } from 'node:http';

/** A minimal server-sent-events reader on its own socket (no pooling), for tests and the bench. */
export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

export interface SseConnection {
  status: number;
  headers: IncomingHttpHeaders;
  /** The next event; comments are only counted, in `comments`. */
  next(timeoutMs?: number): Promise<SseEvent>;
  comments: number;
  close(): void;
}

export function connectSse(url: string, headers: Record<string, string>): Promise<SseConnection> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false });
    req.once('error', reject);
    req.once('response', (res) => {
      const queue: SseEvent[] = [];
      const waiters: { resolve: (e: SseEvent) => void; reject: (err: Error) => void }[] = [];
      let ended = false;
      const conn: SseConnection = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        comments: 0,
        next(timeoutMs = 5000) {
          const e = queue.shift();
          if (e) return Promise.resolve(e);
          if (ended) return Promise.reject(new Error('the stream ended'));
          return new Promise((res2, rej) => {
            const timer = setTimeout(() => rej(new Error(`no event within ${timeoutMs} ms`)), timeoutMs);
            waiters.push({
              resolve: (ev) => {
                clearTimeout(timer);
                res2(ev);
              },
              reject: (err) => {
                clearTimeout(timer);
                rej(err);
              },
            });
          });
        },
        close: () => req.destroy(),
      };
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const ev: SseEvent = { data: '' };
          let isEvent = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) conn.comments++;
            else if (line.startsWith('data: ')) {
              ev.data += line.slice(6);
              isEvent = true;
            } else if (line.startsWith('id: ')) ev.id = line.slice(4);
            else if (line.startsWith('event: ')) ev.event = line.slice(7);
          }
          if (!isEvent) continue;
          const waiter = waiters.shift();
          if (waiter) waiter.resolve(ev);
          else queue.push(ev);
        }
      });
      const finish = () => {
        ended = true;
        for (const w of waiters.splice(0)) w.reject(new Error('the stream ended'));
      };
      res.on('end', finish);
      res.on('close', finish);
      resolve(conn);
    });
    req.end();
  });
}
