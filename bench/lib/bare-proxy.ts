// The baseline of SPEC §7: a bare @fastify/http-proxy in front of UPSTREAM.
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const app = Fastify({ logger: false });
await app.register(proxy, { upstream: process.env.UPSTREAM!, prefix: '/' });
await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`PORT ${app.server.address() && typeof app.server.address() === 'object' ? (app.server.address() as { port: number }).port : 0}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
