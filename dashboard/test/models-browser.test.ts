import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import { compose } from '../src/compose.ts';
import { ConfigSchema } from '../src/config.ts';
import { REPO_ROOT, chromiumPath, startService, type RunningService } from './support/services.ts';

// The Models page on the real model-server (which trains the demo versions into an empty model
// directory, running the gates on them) and the real experiment-service: it lists the versions
// with their status, gates and offline metrics, and starts a release from a confirmation that
// names the route, the params and the plan. Nothing is registered or copied by hand.
// Screenshots go to test-artifacts/dashboard-models/.

const executablePath = chromiumPath();
if (!executablePath && process.env.BUNRYU_REQUIRE_INTEGRATION === '1') throw new Error('chromium is not installed and BUNRYU_REQUIRE_INTEGRATION=1');
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts/dashboard-models');
const ADMIN = 'models-admin-token';

describe.skipIf(!executablePath)('the Models page', () => {
  let dataDir: string;
  let es: RunningService;
  let ms: RunningService;
  let aggregator: Server;
  let dashboard: FastifyInstance;
  let base: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${es.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, body: await res.json() };
  };

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dataDir = await mkdtemp(join(tmpdir(), 'bunryu-dashboard-models-'));
    [ms, es] = await Promise.all([
      startService('model-server', { BUNRYU_DATA_DIR: dataDir, MODEL_DIR: join(dataDir, 'models'), BUNRYU_ADMIN_TOKEN: ADMIN }, 120_000),
      // No aggregator here: the release is checked as started; the autopilot is another test's.
      startService('experiment-service', { BUNRYU_DATA_DIR: dataDir, BUNRYU_ADMIN_TOKEN: ADMIN, BUNRYU_AUTOPILOT: 'off' }),
    ]);
    expect((await api('PUT', '/v1/routes/recommend', { upstream: ms.url, path: '/v1/models/recommend/predict', defaultParams: { model: 'recommend', version: 'v1' } })).status).toBeLessThan(300);
    expect((await api('PUT', '/v1/routes/search', { upstream: ms.url, path: '/v1/models/search/predict', defaultParams: {} })).status).toBeLessThan(300);

    // The experiment page asks for results; a release this young has none yet.
    aggregator = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'BUNRYU_NOT_FOUND', message: 'no results yet' } }));
    });
    await new Promise<void>((r) => aggregator.listen(0, '127.0.0.1', r));
    const aggUrl = `http://127.0.0.1:${(aggregator.address() as AddressInfo).port}`;
    const config = ConfigSchema.parse({ EXPERIMENT_SERVICE_URL: es.url, MODEL_SERVER_URL: ms.url, AGGREGATOR_URL: aggUrl, LOG_LEVEL: 'warn' });
    dashboard = await buildApp(config, await compose(config));
    base = await dashboard.listen({ port: 0, host: '127.0.0.1' });
    browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(base + '/');
    await page.getByLabel('Access token', { exact: true }).fill(ADMIN);
    await page.keyboard.press('Enter');
    await page.getByTestId('role').filter({ hasText: 'admin' }).waitFor();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await dashboard?.close();
    await Promise.all([es?.stop(), ms?.stop()]);
    await new Promise<void>((r) => (aggregator ? aggregator.close(() => r()) : r()));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('lists each version with its status, gates and offline metrics, and offers only the routes serving the model', async () => {
    await page.getByRole('link', { name: 'Models' }).click();
    const card = page.locator('[data-model="recommend"]');
    await card.waitFor({ timeout: 20_000 });
    const rows = card.locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    expect(await card.locator('[data-version="v1"] [data-testid="version-status"]').textContent()).toBe('ready');
    expect(await card.locator('[data-version="v2"] [data-testid="version-status"]').textContent()).toBe('ready');
    // Offline metrics from each version's model.json: one column per metric.
    const headers = await card.locator('thead th').allTextContents();
    expect(headers).toEqual(expect.arrayContaining(['auc', 'logLoss']));
    const models = await (await fetch(`${ms.url}/v1/models`)).json();
    const v2 = models.models.find((m: { name: string }) => m.name === 'recommend').versions.find((v: { version: string }) => v.version === 'v2');
    const aucColumn = headers.indexOf('auc') - 1; // the version is the row's <th>
    expect(Number(await card.locator('[data-version="v2"] td').nth(aucColumn).textContent())).toBeCloseTo(v2.metrics.auc, 3);
    // Gates as the model-server reports them, each with its figure.
    const gateNames = await card.locator('[data-version="v2"] [data-gate]').evaluateAll((els) => els.map((e) => e.getAttribute('data-gate')));
    expect(gateNames).toEqual(v2.gates.map((g: { name: string }) => g.name));
    // Only the route whose path calls this model is offered; v1 is its default already.
    expect(await card.getByTestId('release-route').locator('option').allTextContents()).toEqual(['recommend (default v1)']);
    expect(await card.locator('[data-version="v1"]').getByRole('button', { name: 'Release this version' }).isDisabled()).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, '01-models.png'), fullPage: true });
  }, 60_000);

  it('starts a release after a confirmation naming the route, the params and the plan, and links to it', async () => {
    const card = page.locator('[data-model="recommend"]');
    await card.locator('[data-version="v2"]').getByRole('button', { name: 'Release this version' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    const text = (await dialog.textContent()) ?? '';
    expect(text).toContain('Release recommend v2 on recommend?');
    expect(text).toContain('{"version":"v2"}');
    expect(text).toContain('Step 1: 5% treatment');
    expect(text).toContain('Step 3: 50% treatment');
    expect(text).toContain('error_rate must not increase');
    await page.screenshot({ path: join(ARTIFACTS, '02-confirm.png'), fullPage: true });
    await dialog.getByRole('button', { name: 'Start the release' }).click();

    const link = page.getByTestId('release-created').getByRole('link');
    await link.waitFor();
    expect(await link.textContent()).toBe('recommend-release-v2');
    const stored = await api('GET', '/v1/experiments/recommend-release-v2');
    expect(stored.body).toMatchObject({
      status: 'running',
      route: 'recommend',
      variants: [
        { key: 'control', weight: 95, params: {} },
        { key: 'treatment', weight: 5, params: { version: 'v2' } },
      ],
      release: { baseline: { model: 'recommend', version: 'v1' } },
      rolloutState: { step: 0, autopilot: 'active' },
    });
    await link.click();
    await page.waitForURL('**/#/experiments/recommend-release-v2');
    await expect.poll(() => page.locator('.page-head .badge').first().textContent()).toBe('Running');
    await page.screenshot({ path: join(ARTIFACTS, '03-release-started.png'), fullPage: true });

    // A second release on the same route is refused with the service's message, in the dialog.
    await page.goto(base + '/#/models');
    await page.locator('[data-model="recommend"] [data-version="v2"]').getByRole('button', { name: 'Release this version' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Start the release' }).click();
    await expect.poll(() => page.getByRole('dialog').getByRole('alert').textContent()).toContain('already has a running release');
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
