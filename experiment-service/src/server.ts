import { runService } from '@bunryu/platform';
import { DEFAULT_ADMIN_TOKEN, resolveTokens } from './auth/tokens.ts';
import { buildApp } from './app.ts';
import { compose } from './compose.ts';
import { readConfig } from './config.ts';

const config = readConfig();
if (resolveTokens(config).defaultInUse) {
  process.stderr.write(
    `experiment-service: WARNING no BUNRYU_ADMIN_TOKEN or BUNRYU_TOKENS is set: the default admin token "${DEFAULT_ADMIN_TOKEN}" is accepted. Set BUNRYU_ADMIN_TOKEN before exposing this service.\n`,
  );
}
const deps = await compose(config);
const app = await buildApp(config, deps);
app.log.info({ store: deps.storeKind }, `experiment-service stores its state in ${deps.storeKind === 'redis' ? 'Redis' : 'files'}`);
await runService('experiment-service', { app, close: deps.close }, { host: config.HOST, port: config.PORT });
