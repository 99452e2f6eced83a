import { mkdirSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import { compose } from '../src/compose.ts';
import { ConfigSchema } from '../src/config.ts';
import { REPO_ROOT, chromiumPath, startService, type RunningService } from './support/services.ts';

// The whole flow through a real browser (SPEC §9: playwright-core driving Debian's chromium)
// against the real experiment-service, gateway and aggregator on their embedded defaults:
// sign in, create an experiment through the form, start it, drive traffic through the gateway,
// watch the results update, ramp, promote, and read the audit history. Screenshots go to
// test-artifacts/dashboard/.

const executablePath = chromiumPath();
if (!executablePath && process.env.BUNRYU_REQUIRE_INTEGRATION === '1') {
  throw new Error('chromium is not installed and BUNRYU_REQUIRE_INTEGRATION=1: apt-get install -y chromium');
}
if (!executablePath) process.stderr.write('skipping the dashboard browser test: no /usr/lib/chromium/chromium (apt-get install -y chromium)\n');

const ARTIFACTS = join(REPO_ROOT, 'test-artifacts/dashboard');
const ADMIN = 'browser-admin-token';
const VIEWER = 'browser-viewer-token';
const EDITOR = 'browser-editor-token';
const KEY = 'ranker-v2';
/** The aggregator's `AGGREGATOR_PHASE_SETTLE_MS` here: short, so the test waits little after its ramp. */
const SETTLE_MS = 1000;

describe.skipIf(!executablePath)('dashboard in a browser, against the real services', () => {
  let dataDir: string;
  const services: RunningService[] = [];
  let es: RunningService;
  let gateway: RunningService;
  let dashboard: FastifyInstance;
  let base: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  let shot = 0;

  const screenshot = async (name: string, fullPage = false) => {
    shot += 1;
    await page.screenshot({ path: join(ARTIFACTS, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage });
  };
  // The steps build on each other: after one fails, the rest would only time out.
  let failed = false;
  beforeEach((ctx) => {
    if (failed) ctx.skip();
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') failed = true;
  });
  /** Form controls and buttons without an accessible name (label, aria-label or text). */
  const unlabelled = () =>
    page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLElement>('input, select, textarea, button, [role="tab"]'))
        .filter((el) => {
          if (el instanceof HTMLInputElement && el.type === 'hidden') return false;
          const labels = Array.from((el as HTMLInputElement).labels ?? [])
            .map((l) => l.textContent?.trim())
            .join('');
          const text = el.tagName === 'BUTTON' || el.getAttribute('role') === 'tab' ? el.textContent?.trim() : '';
          return !(el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || labels || text);
        })
        .map((el) => el.outerHTML.slice(0, 160)),
    );
  const nav = (name: string) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });
  const diagnostics = () => services.map((s) => `--- ${s.name}\n${s.log().slice(-3000)}`).join('\n');

  beforeAll(async () => {
    rmSync(ARTIFACTS, { recursive: true, force: true }); // only this run's screenshots
    mkdirSync(ARTIFACTS, { recursive: true });
    dataDir = await mkdtemp(join(tmpdir(), 'bunryu-dashboard-browser-'));
    // The experiment-service's tokens are the aggregator's too: the dashboard reads results with the session's.
    const common = { BUNRYU_DATA_DIR: dataDir, BUNRYU_ADMIN_TOKEN: ADMIN, BUNRYU_TOKENS: `viewer:vic:${VIEWER},editor:eve:${EDITOR}` };
    es = await startService('experiment-service', { ...common, SSE_HEARTBEAT_SECONDS: '1' });
    services.push(es);
    const downstream = { ...common, EXPERIMENT_SERVICE_URL: es.url, EXPERIMENT_SERVICE_TOKEN: VIEWER };
    const [gw, agg] = await Promise.all([startService('gateway', downstream), startService('aggregator', { ...downstream, AGGREGATOR_PHASE_SETTLE_MS: String(SETTLE_MS) }, 90_000)]);
    gateway = gw;
    services.push(gw, agg);

    const config = ConfigSchema.parse({ EXPERIMENT_SERVICE_URL: es.url, AGGREGATOR_URL: agg.url, LOG_LEVEL: 'warn', BUNRYU_DATA_DIR: dataDir });
    dashboard = await buildApp(config, await compose(config));
    base = await dashboard.listen({ port: 0, host: '127.0.0.1' });

    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      // 401 on the first session check and 4xx the test provokes are expected; script errors are not.
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(m.text());
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await dashboard?.close();
    await Promise.all(services.map((s) => s.stop()));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('gives a viewer a read-only dashboard, and the service refuses what the role may not do', async () => {
    await page.goto(base + '/');
    await page.getByLabel('Access token', { exact: true }).fill(VIEWER);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByTestId('role').textContent()).toBe('viewer');
    await expect.poll(() => page.getByRole('button', { name: 'New experiment' }).isDisabled()).toBe(true);
    await nav('Routes').click();
    await expect.poll(() => page.getByRole('button', { name: 'Save route' }).isDisabled()).toBe(true);
    await screenshot('viewer-routes-read-only');
    // The page cannot hold the token, and the server refuses the action whatever the UI shows.
    expect(await page.evaluate(() => document.cookie)).toBe('');
    const refused = await page.evaluate(async () => {
      const res = await fetch('/api/es/v1/routes/x', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"upstream":"http://127.0.0.1:1"}' });
      return { status: res.status, body: await res.json() };
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('BUNRYU_FORBIDDEN');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Access token', { exact: true }).waitFor();
  }, 60_000);

  it('lets an admin add the route and the metric', async () => {
    await page.getByLabel('Access token', { exact: true }).fill(ADMIN);
    await page.keyboard.press('Enter'); // the sign-in form submits from the keyboard
    await expect.poll(() => page.getByTestId('role').textContent()).toBe('admin');

    await nav('Routes').click();
    await page.getByLabel('Route key', { exact: true }).fill('recommend');
    await page.getByLabel('Upstream URL', { exact: true }).fill('http://127.0.0.1:9/never-called');
    await page.getByLabel('Default params (JSON object)', { exact: true }).fill('{"version": "1"}');
    await page.getByRole('button', { name: 'Save route' }).click();
    await page.locator('tr[data-route="recommend"]').waitFor();
    expect(await unlabelled()).toEqual([]);

    await nav('Metrics').click();
    await page.getByLabel('Metric key', { exact: true }).fill('ctr');
    await page.getByLabel('Type', { exact: true }).selectOption('proportion');
    await page.getByLabel('Event type', { exact: true }).fill('click');
    await page.getByLabel('Description (optional)', { exact: true }).fill('Share of exposed users who clicked');
    await page.getByRole('button', { name: 'Save metric' }).click();
    await page.locator('tr[data-metric="ctr"]').waitFor();
    expect(await unlabelled()).toEqual([]);
    await screenshot('metric-catalogue');
  }, 60_000);

  it('creates an experiment through the form, showing the service\'s validation errors at their fields', async () => {
    await nav('Experiments').click();
    await page.getByRole('link', { name: 'New experiment' }).click();
    await page.locator('#f-key').fill('Ranker V2'); // uppercase: the service refuses it
    await page.locator('#f-name').fill('Ranker v2 against v1');
    await page.getByLabel('Hypothesis', { exact: true }).fill('v2 lifts CTR by 2%');
    await page.getByLabel('Route', { exact: true }).selectOption('recommend');
    await page.getByLabel('Layer', { exact: true }).fill('ranking');
    await page.getByRole('button', { name: 'Add rule' }).click();
    await page.getByLabel('Attribute', { exact: true }).fill('country');
    await page.getByLabel('Operator', { exact: true }).selectOption('in');
    await page.getByLabel('Value', { exact: true }).fill('JP, US');
    await page.locator('#f-variants-0-params').fill('{"version": "1"}');
    await page.locator('#f-variants-1-params').fill('{"version": "2"');
    // Invalid JSON is caught while typing, next to the field.
    await expect.poll(() => page.locator('[data-field-error="f-variants-1-params"]').textContent()).toContain('not valid JSON');
    await page.locator('#f-variants-1-params').fill('{"version": "2"}');
    // Weight sliders keep the total at 100%: 60 for control leaves 40 for treatment.
    await page.getByLabel('Weight of control (%)', { exact: true }).fill('60');
    await page.getByLabel('Weight of control (%)', { exact: true }).press('Tab');
    await expect.poll(() => page.getByLabel('Weight of treatment (%)', { exact: true }).inputValue()).toBe('40');
    await page.getByLabel('Weight of treatment (%)', { exact: true }).fill('50');
    await page.getByLabel('Weight of treatment (%)', { exact: true }).press('Tab');
    await expect.poll(() => page.getByLabel('Weight of control (%)', { exact: true }).inputValue()).toBe('50');
    await page.getByLabel('Primary metric', { exact: true }).selectOption('ctr');
    await page.getByLabel('Slice results by', { exact: true }).fill('country');
    expect(await page.getByLabel('Design', { exact: true }).inputValue()).toBe('ab');
    expect(await unlabelled()).toEqual([]);

    await page.getByRole('button', { name: 'Create experiment' }).click();
    const keyError = page.locator('[data-field-error="f-key"]');
    await expect.poll(() => keyError.textContent()).toContain('must match');
    expect(await page.locator('#f-key').getAttribute('aria-invalid')).toBe('true');
    await screenshot('form-server-validation', true);

    await page.locator('#f-key').fill(KEY);
    await page.getByRole('button', { name: 'Create experiment' }).click();
    await page.waitForURL(`**/#/experiments/${KEY}`);
    await expect.poll(() => page.locator('.page-head .badge').first().textContent()).toBe('Draft');

    // Editing sends the version it read (If-Match) and comes back with the form filled in.
    await page.getByRole('link', { name: 'Edit' }).click();
    await expect.poll(() => page.locator('#f-variants-1-params').inputValue()).toContain('"version": "2"');
    expect(await page.getByLabel('Value', { exact: true }).inputValue()).toBe('JP, US');
    await page.locator('#f-name').fill('Ranker v2 against v1 (CTR)');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL(`**/#/experiments/${KEY}`);
    await expect.poll(() => page.locator('.page-head h1').textContent()).toContain('Ranker v2 against v1 (CTR)');
  }, 60_000);

  it('starts the experiment after a confirmation naming the buckets', async () => {
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    const impact = page.getByTestId('start-impact');
    await expect.poll(() => impact.textContent()).toContain('[0, 10000)');
    expect(await impact.textContent()).toContain('control for variant buckets [0, 5000)');
    await screenshot('start-confirmation');
    await page.getByRole('button', { name: 'Start now' }).click();
    await expect.poll(() => page.locator('.page-head .badge').first().textContent()).toBe('Running');
  }, 30_000);

  it('shows results that update as traffic arrives', async () => {
    await waitForAssignment(gateway.url);
    const units = page.locator('[data-testid="variants-table"] [data-testid="units"]');
    // Traffic arrives in waves a second or so apart, so the lift chart has several points.
    for (let wave = 0; wave < 3; wave++) {
      await driveTraffic(gateway.url, wave * 100, 100);
      await new Promise((r) => setTimeout(r, 1200));
    }
    // Auto refresh (every 5 s) shows the units without a reload; the aggregator reflects events
    // accepted more than 5 s ago.
    await expect.poll(async () => sum(await units.allTextContents()), { timeout: 60_000, interval: 1000 }).toBeGreaterThan(0).catch((err) => {
      throw new Error(`${err.message}\n${diagnostics()}`);
    });
    const first = sum(await units.allTextContents());
    for (let wave = 3; wave < 6; wave++) {
      await driveTraffic(gateway.url, wave * 100, 100);
      await new Promise((r) => setTimeout(r, 1200));
    }
    await expect.poll(async () => sum(await units.allTextContents()), { timeout: 60_000, interval: 1000 }).toBe(600);
    expect(first).toBeLessThanOrEqual(600);
    const ctr = page.locator('table.metric[data-metric="ctr"] tr[data-variant="treatment"] [data-testid="lift"]');
    await expect.poll(() => ctr.textContent(), { timeout: 30_000 }).toMatch(/^\+\d/);
    const chartPoints = async () => Number((await page.locator('details.chart-table summary').textContent())?.match(/\d+/)?.[0] ?? 0);
    await expect.poll(chartPoints, { timeout: 15_000 }).toBeGreaterThanOrEqual(3);
    await page.locator('.chart-wrap canvas').scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    await screenshot('results', true);
    expect(await unlabelled()).toEqual([]);
  }, 150_000);

  it('ramps control 50 → 30 after a confirmation naming the buckets that move', async () => {
    // Tabs follow the WAI-ARIA pattern: arrow keys move between them.
    await page.getByRole('tab', { name: 'Results' }).focus();
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.getByRole('tab', { name: 'Release' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Release');
    expect(await unlabelled()).toEqual([]);
    await page.getByLabel('New weight of control (%)', { exact: true }).fill('30');
    await page.getByLabel('New weight of control (%)', { exact: true }).press('Tab');
    await expect.poll(() => page.getByLabel('New weight of treatment (%)', { exact: true }).inputValue()).toBe('70');
    // Escape closes a confirmation without acting.
    await page.getByRole('button', { name: 'Review ramp…' }).click();
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await expect.poll(() => page.getByRole('dialog').count()).toBe(0);
    await page.getByRole('button', { name: 'Review ramp…' }).click();
    const moves = page.getByTestId('ramp-moves');
    await expect.poll(() => moves.textContent()).toContain('[3000, 5000) move from control to treatment');
    expect(await moves.textContent()).toContain('20%');
    await screenshot('ramp-confirmation');
    await page.getByRole('button', { name: 'Ramp now' }).click();
    await expect.poll(() => page.getByRole('img', { name: /Current split: control 30%, treatment 70%/ }).count()).toBe(1);
  }, 30_000);

  it('analyses the ramp as a second phase: returning units count once, and the ones it moved are shown', async () => {
    // Units first seen while a ramp settles are left out of the analysis (ADR 0009): let it pass.
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    // The first 200 users come back (some now in the other variant) and 100 new ones arrive.
    await driveTraffic(gateway.url, 0, 200);
    await driveTraffic(gateway.url, 600, 100);
    await page.getByRole('tab', { name: 'Results' }).click();
    const phases = page.getByTestId('phases');
    await expect.poll(async () => (await phases.count()) > 0 && (await phases.locator('summary').textContent()), { timeout: 60_000, interval: 1000 }).toMatch(/^Analysed in 2 phases/);
    const units = page.locator('[data-testid="variants-table"] [data-testid="units"]');
    await expect.poll(async () => sum(await units.allTextContents()), { timeout: 60_000, interval: 1000 }).toBe(700);
    // Every answer came from the assigned variant's model. (These exposures come from /v1/assign,
    // which calls no upstream: the percentiles table has no latency to show.)
    await expect.poll(() => page.locator('[data-testid="served"] tr[data-variant="treatment"] td').nth(1).textContent()).toBe('100.0%');
    expect(await page.locator('[data-testid="percentiles"] tbody tr').count()).toBe(2);
    // Slices by the declared country, each row a corrected comparison of one value.
    await page.getByRole('button', { name: 'Refresh now' }).click();
    const slices = page.getByTestId('slices');
    await expect.poll(async () => (await slices.count()) > 0 && (await slices.locator('tbody tr').count()), { timeout: 30_000, interval: 1000 }).toBe(2);
    expect(await slices.locator('tbody th').allTextContents()).toEqual(['JP', 'US']);
    expect(await slices.locator('h3').textContent()).toContain('Holm-corrected');
    const moved = Number((await phases.locator('summary').textContent())?.match(/(\d+) units? moved/)?.[1]);
    expect(moved).toBeGreaterThan(0);
    await phases.locator('summary').click();
    await screenshot('results-phases');
    expect(await unlabelled()).toEqual([]);
    await page.getByRole('tab', { name: 'Release' }).click();
  }, 150_000);

  it('promotes the treatment after a confirmation naming the route and its params', async () => {
    await page.getByRole('radio', { name: /^treatment/ }).check();
    await page.getByRole('button', { name: 'Promote treatment…' }).click();
    const impact = page.getByTestId('promote-impact');
    await expect.poll(() => impact.textContent()).toContain('All matching traffic on route recommend gets variant treatment');
    expect(await impact.textContent()).toContain('{"version":"2"}');
    await screenshot('promote-confirmation');
    await page.getByRole('button', { name: 'Promote treatment', exact: true }).click();
    await expect.poll(() => page.locator('.page-head .badge').first().textContent()).toBe('Released');
    // The gateway now gives every matching unit the released params.
    await expect
      .poll(async () => (await assignOnce(gateway.url, 'fresh-unit-after-release', false)).params.version, { timeout: 10_000 })
      .toBe('2');
  }, 30_000);

  it('rolls the release back after a confirmation, and the route returns to its defaults', async () => {
    await page.getByRole('tab', { name: 'Release' }).click();
    await page.getByRole('button', { name: 'Roll back…' }).click();
    const impact = page.getByTestId('rollback-impact');
    await expect.poll(() => impact.textContent()).toContain("stops getting treatment's params");
    expect(await impact.textContent()).toContain('{"version":"1"}');
    await screenshot('rollback-confirmation');
    await page.getByRole('button', { name: 'Roll back now' }).click();
    await expect.poll(() => page.locator('.page-head .badge').first().textContent()).toBe('Rolled back');
    await expect
      .poll(async () => (await assignOnce(gateway.url, 'fresh-unit-after-rollback', false)).params.version, { timeout: 10_000 })
      .toBe('1');
  }, 30_000);

  it('records every step in the audit history', async () => {
    await page.getByRole('tab', { name: 'History' }).click();
    const rows = page.locator('[data-testid="history"] tbody tr');
    await expect
      .poll(() => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-action'))))
      .toEqual(['rollback', 'promote', 'ramp', 'start', 'update', 'create']);
    const ramp = await page.locator('[data-testid="history"] tr[data-action="ramp"]').textContent();
    expect(ramp).toContain('control 50%, treatment 50%');
    expect(ramp).toContain('control 30%, treatment 70%');
    expect(ramp).toContain('admin');
    await screenshot('audit-history');

    await nav('Experiments').click();
    // Rolled-back experiments leave the default (active) list; "All" shows them.
    await page.getByLabel('Status').selectOption('all');
    await page.locator(`tr[data-experiment="${KEY}"]`).waitFor();
    await screenshot('experiments-list');
    expect(pageErrors).toEqual([]);
  }, 30_000);
});

const sum = (texts: string[]) => texts.reduce((s, t) => s + Number(t.replace(/[^0-9]/g, '') || 0), 0);

async function assignOnce(gatewayUrl: string, unitId: string, track: boolean) {
  const res = await fetch(`${gatewayUrl}/v1/assign`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // Every third user comes from the US: the results are sliced by country.
    body: JSON.stringify({ unitId, route: 'recommend', attributes: { country: Number(unitId.replace(/\D/g, '')) % 3 === 0 ? 'US' : 'JP' }, track }),
  });
  if (!res.ok) throw new Error(`assign answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as { assignments: { experiment: string; variant: string }[]; params: Record<string, unknown> };
}

/** The gateway learns of the start from the experiment-service's config stream. */
async function waitForAssignment(gatewayUrl: string) {
  await expect
    .poll(async () => (await assignOnce(gatewayUrl, 'probe-unit', false).catch(() => ({ assignments: [] }))).assignments.length, { timeout: 10_000 })
    .toBe(1);
}

/**
 * Users `from`..`from+n` request a recommendation through the gateway (an exposure each) and
 * some click: 30% of treatment users and 10% of control users, chosen by index so the run is
 * deterministic.
 */
async function driveTraffic(gatewayUrl: string, from: number, n: number) {
  const clicks: { type: string; unitId: string; route: string }[] = [];
  for (let i = from; i < from + n; i += 20) {
    const batch = Array.from({ length: Math.min(20, from + n - i) }, (_, k) => i + k);
    const results = await Promise.all(batch.map((u) => assignOnce(gatewayUrl, `user-${u}`, true)));
    results.forEach((r, k) => {
      const variant = r.assignments[0]?.variant;
      const u = batch[k]!;
      if ((variant === 'treatment' && u % 10 < 3) || (variant === 'control' && u % 10 < 1)) clicks.push({ type: 'click', unitId: `user-${u}`, route: 'recommend' });
    });
  }
  for (let i = 0; i < clicks.length; i += 500) {
    const res = await fetch(`${gatewayUrl}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events: clicks.slice(i, i + 500) }),
    });
    expect(res.status).toBe(202);
  }
}
