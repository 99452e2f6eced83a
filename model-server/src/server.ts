import { runService } from '@bunryu/platform';
import { defaultTokenWarning } from '@bunryu/platform/auth';
import { buildApp } from './app.ts';
import { compose } from './compose.ts';
import { readConfig } from './config.ts';

const config = readConfig();
const warning = defaultTokenWarning('model-server', config);
if (warning) process.stderr.write(warning);
const deps = await compose(config);
const app = await buildApp(config, deps);
await runService('model-server', { app, close: deps.close }, { host: config.HOST, port: config.PORT });
