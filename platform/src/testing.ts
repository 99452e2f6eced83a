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
