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

// The guarded rollout in a browser (SPEC §10): the plan editor on the experiment form, then the
// Release tab's steps, guardrail chart and decision log while the real experiment-service's
// autopilot acts on results from an aggregator this test controls. Screenshots go to
// test-artifacts/dashboard-rollout/.

const executablePath = chromiumPath();
if (!executablePath && process.env.BUNRYU_REQUIRE_INTEGRATION === '1') throw new Error('chromium is not installed and BUNRYU_REQUIRE_INTEGRATION=1');
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts/dashboard-rollout');
const ADMIN = 'rollout-admin-token';
const KEY = 'ranker-guarded';

/** SPEC §4 results for the serving guardrails: `errors` is each arm's error rate. */
function results(errors: [number, number], n: [number, number] = [3000, 300]) {
  const arm = (key: string, units: number, p: number) => ({ key, units, count: Math.round(units * p), sum: units * p, mean: p, variance: p * (1 - p) });
  const lat = (key: string, units: number) => ({ key, units, count: units, sum: units * 50, mean: 50, variance: 400 });
  return {
    experiment: KEY,
    srm: { pValue: 0.5, mismatch: false },
    variants: [{ key: 'control', units: n[0], exposures: n[0] }, { key: 'treatment', units: n[1], exposures: n[1] }],
    metrics: [
      { metric: 'error_rate', type: 'proportion', variants: [arm('control', n[0], errors[0]), arm('treatment', n[1], errors[1])], comparisons: [] },
      { metric: 'latency_ms', type: 'mean', variants: [lat('control', n[0]), lat('treatment', n[1])], comparisons: [] },
    ],
  };
}

describe.skipIf(!executablePath)('guarded rollouts in the dashboard', () => {
  let dataDir: string;
  let es: RunningService;
  let aggregator: Server;
  let current = results([0.01, 0.01], [3000, 40]);
  let dashboard: FastifyInstance;
  let base: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dataDir = await mkdtemp(join(tmpdir(), 'bunryu-dashboard-rollout-'));
    aggregator = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.url?.startsWith(`/v1/results/${KEY}`) ? current : { experiment: 'other', srm: { pValue: 1, mismatch: false }, variants: [], metrics: [] }));
    });
    await new Promise<void>((r) => aggregator.listen(0, '127.0.0.1', r));
    const aggUrl = `http://127.0.0.1:${(aggregator.address() as AddressInfo).port}`;
    es = await startService('experiment-service', { BUNRYU_DATA_DIR: dataDir, BUNRYU_ADMIN_TOKEN: ADMIN, AGGREGATOR_URL: aggUrl, AUTOPILOT_SERVING_INTERVAL_MS: '300' });
    const admin = (method: string, path: string, body: unknown) =>
      fetch(`${es.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await admin('PUT', '/v1/routes/recommend', { upstream: 'http://127.0.0.1:9', path: '/predict', defaultParams: { version: '1' } })).status).toBeLessThan(300);

    const config = ConfigSchema.parse({ EXPERIMENT_SERVICE_URL: es.url, AGGREGATOR_URL: aggUrl, LOG_LEVEL: 'warn', BUNRYU_DATA_DIR: dataDir });
    dashboard = await buildApp(config, await compose(config));
    base = await dashboard.listen({ port: 0, host: '127.0.0.1' });
    browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(base + '/');
    await page.getByLabel('Access token', { exact: true }).fill(ADMIN);
    await page.keyboard.press('Enter');
    await page.getByTestId('role').filter({ hasText: 'admin' }).waitFor();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await dashboard?.close();
    await es?.stop();
    await new Promise<void>((r) => (aggregator ? aggregator.close(() => r()) : r()));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('edits a plan on the form, starting from the default, and the service gets it', async () => {
    await page.goto(base + '/#/experiments/new');
    await page.locator('#f-key').fill(KEY);
    await page.getByLabel('Route', { exact: true }).selectOption('recommend');
    await page.locator('#f-variants-0-params').fill('{"version": "1"}');
    await page.locator('#f-variants-1-params').fill('{"version": "2"}');
    await page.locator('#f-rollout').check();
    // The default plan: 5% → 25% → 50%, guardrails error_rate and latency_ms.
    await expect.poll(() => page.getByLabel('Step 1 weight of treatment', { exact: true }).inputValue()).toBe('5');
    expect(await page.getByLabel('Step 3 weight of treatment', { exact: true }).inputValue()).toBe('50');
    expect(await page.getByLabel('Guardrail 2 metric', { exact: true }).inputValue()).toBe('latency_ms');
    // A step that does not sum to 100 is caught at its field before anything is sent.
    await page.getByLabel('Step 2 weight of treatment', { exact: true }).fill('30');
    await page.getByRole('button', { name: 'Create experiment' }).click();
    await expect.poll(() => page.locator('[data-field-error="f-rollout-steps-1-weights"]').textContent()).toContain('sum to 100');
    await page.getByLabel('Step 2 weight of control', { exact: true }).fill('70');
    // Fast steps for the test: no minimum time.
    for (const i of [1, 2, 3]) await page.getByLabel(`Step ${i} minimum minutes`, { exact: true }).fill('0');
    await page.screenshot({ path: join(ARTIFACTS, '01-plan-editor.png'), fullPage: true });
    await page.getByRole('button', { name: 'Create experiment' }).click();
    await page.waitForURL(`**/#/experiments/${KEY}`);
    const stored = await (await fetch(`${es.url}/v1/experiments/${KEY}`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
    expect(stored.rollout.steps.map((s: { weights: Record<string, number>; minMinutes: number }) => [s.weights.treatment, s.minMinutes])).toEqual([[5, 0], [30, 0], [50, 0]]);
  }, 60_000);

  it('shows the steps, the guardrails against their margins, and the autopilot rolling back', async () => {
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await page.getByRole('button', { name: 'Start now' }).click();
    await expect.poll(() => page.locator('.page-head .badge').first().textContent()).toBe('Running');
    await page.getByRole('tab', { name: 'Release' }).click();
    await expect.poll(() => page.locator('.steps [aria-current="step"]').textContent()).toContain('Step 1');
    // Below the minimum the autopilot holds and says why.
    await expect.poll(() => page.locator('.rollout').textContent(), { timeout: 15_000 }).toContain('min-units-for-decision');

    // A person takes over and hands back.
    await page.getByRole('button', { name: 'Take over (pause the autopilot)' }).click();
    await expect.poll(() => page.locator('.rollout .badge').textContent()).toBe('a person drives');
    await page.getByRole('button', { name: 'Hand back to the autopilot' }).click();
    await expect.poll(() => page.locator('.rollout .badge').textContent()).toBe('autopilot driving');

    // The treatment starts failing: the autopilot rolls back, and the page shows why.
    current = results([0.01, 0.3]);
    await expect.poll(() => page.locator('.page-head .badge').first().textContent(), { timeout: 20_000 }).toBe('Rolled back');
    await page.getByRole('tab', { name: 'Release' }).click();
    const chart = page.getByRole('img', { name: /error_rate in treatment/ });
    await expect.poll(() => chart.getAttribute('aria-label'), { timeout: 15_000 }).toContain('harmed');
    await expect.poll(() => page.locator('table.decisions').textContent()).toContain('rollback');
    expect(await page.locator('table.decisions').textContent()).toContain('harm');
    await page.screenshot({ path: join(ARTIFACTS, '02-release-tab-rolled-back.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 90_000);
});
