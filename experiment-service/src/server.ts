import { runService } from '@bunryu/platform';
import { defaultTokenWarning } from '@bunryu/platform/auth';
import { buildApp } from './app.ts';
import { compose, type Deps } from './compose.ts';
import { readConfig } from './config.ts';

const config = readConfig();
const warning = defaultTokenWarning('experiment-service', config);
if (warning) process.stderr.write(warning);
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
