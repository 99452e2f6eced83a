import { runService } from '@bunryu/platform';
import { buildApp } from './app.ts';
import { compose } from './compose.ts';
import { readConfig } from './config.ts';

const config = readConfig();
const deps = await compose(config);
const app = await buildApp(config, deps);
await runService('gateway', { app, close: deps.close }, { host: config.HOST, port: config.PORT });
