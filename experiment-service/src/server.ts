import { runService } from '@bunryu/platform';
import { DEFAULT_ADMIN_TOKEN, resolveTokens } from './auth/tokens.ts';
import { buildApp } from './app.ts';
import { compose, type Deps } from './compose.ts';
import { readConfig } from './config.ts';

const config = readConfig();
if (resolveTokens(config).defaultInUse) {
  process.stderr.write(
    `experiment-service: WARNING no BUNRYU_ADMIN_TOKEN or BUNRYU_TOKENS is set: the default admin token "${DEFAULT_ADMIN_TOKEN}" is accepted. Set BUNRYU_ADMIN_TOKEN before exposing this service.\n`,
  );
}
let deps: Deps | undefined;
try {
  deps = await compose(config);
  const app = await buildApp(config, deps);
  app.log.info({ store: deps.storeKind }, `experiment-service keeps its state in ${deps.storeKind === 'redis' ? 'Redis' : 'files'}`);
  await runService('experiment-service', { app, close: deps.close }, { host: config.HOST, port: config.PORT });
} catch (err) {
  process.stderr.write(`experiment-service: cannot start: ${(err as Error).message}\n`);
  await deps?.close().catch(() => undefined);
  process.exit(1);
}
