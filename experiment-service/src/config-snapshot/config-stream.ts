import type { ServerResponse } from 'node:http';
import type { ConfigSnapshots, PublishedSnapshot } from './config-snapshots.ts';

interface Client {
  res: ServerResponse;
  sent: number;
  sentEpoch: string | undefined;
  /** The newest snapshot not yet written because the client is slow. */
  pending: PublishedSnapshot | undefined;
}

/**
 * Server-sent events of config snapshots (`GET /v1/config/stream`). Each event is a whole
 * snapshot, so a slow client skips straight to the newest one instead of buffering every
 * version; heartbeat comments keep idle proxies from closing the connection.
 */
export class ConfigStream {
  private readonly clients = new Set<Client>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(snapshots: ConfigSnapshots, options: { heartbeatMs: number }) {
    this.unsubscribe = snapshots.subscribe((p) => {
      for (const c of this.clients) this.send(c, p);
    });
    this.heartbeat = setInterval(() => {
      for (const c of this.clients) if (!c.res.writableNeedDrain) c.res.write(': heartbeat\n\n');
    }, options.heartbeatMs);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** Takes over `res`: answers 200 with the event stream and sends `first` at once. */
  attach(res: ServerResponse, first: PublishedSnapshot, headers: Record<string, string> = {}): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...headers,
    });
    res.write('retry: 1000\n\n');
    const client: Client = { res, sent: -1, sentEpoch: undefined, pending: undefined };
    this.clients.add(client);
    res.on('close', () => this.clients.delete(client));
    res.on('drain', () => {
      const p = client.pending;
      client.pending = undefined;
      if (p) this.send(client, p);
    });
    this.send(client, first);
  }

  /** Ends every stream (before the server closes, which would otherwise wait for them). */
  close(): void {
    clearInterval(this.heartbeat);
    this.unsubscribe();
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }

  private send(client: Client, p: PublishedSnapshot): void {
    // A snapshot of another epoch (an import) is sent whatever its version.
    if (p.epoch === client.sentEpoch && p.version <= client.sent) return;
    if (client.res.writableNeedDrain) {
      client.pending = p;
      return;
    }
    client.sent = p.version;
    client.sentEpoch = p.epoch;
    client.res.write(`id: ${p.version}\nevent: snapshot\ndata: ${p.json}\n\n`);
  }
}
