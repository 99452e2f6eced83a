import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createKafkaEventLog } from '../src/index.ts';

let servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  servers = [];
});

/** A port with a server that accepts connections and never answers (or, closed, nothing at all). */
async function listen(): Promise<{ port: number; server: Server }> {
  const server = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { port: (server.address() as { port: number }).port, server };
}

describe('kafka event log without a working broker', () => {
  it('rejects append and ping when no broker listens, instead of waiting forever', async () => {
    const { port, server } = await listen();
    await new Promise((resolve) => server.close(resolve));
    servers = [];
    const producer = createKafkaEventLog({ brokers: `127.0.0.1:${port}`, topic: 'bunryu.events', appendTimeoutMs: 8000, pingTimeoutMs: 8000 }).producer();
    await expect(producer.append([{ key: 'u-1', value: '{}' }])).rejects.toThrow();
    await expect(producer.ping()).rejects.toThrow();
    await producer.close();
  });

  it('rejects append within appendTimeoutMs when the broker accepts connections but never answers', async () => {
    const { port } = await listen();
    const producer = createKafkaEventLog({ brokers: `127.0.0.1:${port}`, topic: 'bunryu.events', appendTimeoutMs: 1500, pingTimeoutMs: 1500 }).producer();
    await expect(producer.append([{ key: 'u-1', value: '{}' }])).rejects.toThrow(/within 1500 ms/);
    await expect(producer.ping()).rejects.toThrow(/within 1500 ms/);
    await producer.close();
  });
});
