import { runService } from '@bunryu/platform';
import { defaultTokenWarning } from '@bunryu/platform/auth';
import { buildApp } from './app.ts';
import { compose } from './compose.ts';
import { readConfig } from './config.ts';

const config = readConfig();
const warning = defaultTokenWarning('aggregator', config);
if (warning) process.stderr.write(warning);
const deps = await compose(config);
const app = await buildApp(config, deps);
await runService('aggregator', { app, close: deps.close }, { host: config.HOST, port: config.PORT });
