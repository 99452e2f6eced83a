/** The part of an ioredis client this needs; platform does not depend on ioredis. */
export interface ConnectingClient {
  readonly status: string;
  once(event: 'ready', listener: () => void): unknown;
  off(event: 'ready', listener: () => void): unknown;
}

/**
 * Waits at most `timeoutMs` for a client to be ready. Clients that fail fast (no offline queue)
 * refuse every command while their connection is being made, so a service's first request after
 * its start, or after a reconnect, waits for that connection instead of failing; a Redis that is
 * really away still fails after the bound.
 */
export async function redisReady(client: ConnectingClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    client.once('ready', done);
  });
}
