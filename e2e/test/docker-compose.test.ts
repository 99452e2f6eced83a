import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const hasCompose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;
if (!hasCompose && process.env.BUNRYU_REQUIRE_INTEGRATION === '1') {
  throw new Error('docker-compose is not installed (apt-get install docker-compose) and BUNRYU_REQUIRE_INTEGRATION=1');
}

describe.skipIf(!hasCompose)('docker-compose.yml', () => {
  it('is valid and runs every service on the real adapters with Redis, Kafka and ClickHouse', () => {
    // `config` validates and resolves the file client-side; no Docker engine runs here.
    const out = execFileSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
      cwd: root,
      env: { ...process.env, BUNRYU_ADMIN_TOKEN: 'compose-test-token' },
      encoding: 'utf8',
    });
    for (const s of ['redis', 'kafka', 'clickhouse', 'experiment-service', 'model-server', 'aggregator', 'gateway', 'dashboard']) {
      expect(out).toMatch(new RegExp(`^  ${s}:`, 'm'));
    }
    expect(out).toMatch(/REDIS_URL: redis:\/\/redis:6379/);
    expect(out).toMatch(/KAFKA_BROKERS: kafka:9092/);
    expect(out).toMatch(/CLICKHOUSE_URL: http:\/\/clickhouse:8123/);
    expect(out).toMatch(/KAFKA_PROCESS_ROLES: broker,controller/);
    expect((out.match(/healthcheck:/g) ?? []).length).toBeGreaterThanOrEqual(8);
  });

  it('refuses to start without an admin token', () => {
    const env = { ...process.env };
    delete env.BUNRYU_ADMIN_TOKEN;
    const r = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: root, env, encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/BUNRYU_ADMIN_TOKEN/);
  });

  it('builds a multi-stage image that installs production dependencies only', () => {
    const dockerfile = readFileSync(`${root}/Dockerfile`, 'utf8');
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
  });
});
