// The gateway as server.ts runs it (same composition root and app), on port 0, for the bench.
import type { AddressInfo } from 'node:net';
import { buildApp } from '../src/app.ts';
import { compose } from '../src/compose.ts';
import { readConfig } from '../src/config.ts';

const config = readConfig();
const deps = await compose(config);
const app = await buildApp(config, deps);
await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`PORT ${(app.server.address() as AddressInfo).port}\n`);
process.on('SIGTERM', () => {
  void (async () => {
    await app.close();
    const stats = deps.publisher.stats();
    await deps.close();
    process.stderr.write(`gateway-child: events published ${stats.published}, spilled ${stats.spilled}\n`);
    process.exit(0);
  })();
});
