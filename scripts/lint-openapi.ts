/**
 * `npm run lint` part two: the experiment-service's OpenAPI document, as the service serves it,
 * against Redocly's recommended rules (client generators need what they check: servers,
 * operation ids, resolvable refs).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../experiment-service/src/app.ts';
import { parseEnv } from '@bunryu/core';
import { ConfigSchema } from '../experiment-service/src/config.ts';
import { FileExperimentStore } from '../experiment-service/src/store/file-experiment-store.ts';

const dir = await mkdtemp(join(tmpdir(), 'bunryu-openapi-'));
let status = 1;
try {
  const store = await FileExperimentStore.open(dir);
  const app = await buildApp(parseEnv(ConfigSchema, { BUNRYU_DATA_DIR: dir, LOG_LEVEL: 'silent' }), { store, close: () => store.close() });
  const answer = await app.inject({ method: 'GET', url: '/openapi.json' });
  await app.close();
  if (answer.statusCode !== 200) throw new Error(`GET /openapi.json answered ${answer.statusCode}`);
  const file = join(dir, 'openapi.json');
  await writeFile(file, answer.body);
  const redocly = fileURLToPath(new URL('../node_modules/.bin/redocly', import.meta.url));
  status = spawnSync(redocly, ['lint', '--extends=recommended', '--format=stylish', file], {
    stdio: 'inherit',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
  }).status ?? 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
process.exit(status);
