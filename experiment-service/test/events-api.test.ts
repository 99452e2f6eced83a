import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigSnapshot } from '@bunryu/core';
import { integrationServer } from '@bunryu/platform/testing';
import { bearer, startApp, storeFixture, type StoreFixture, type TestApp, type TestRole } from './support/service.ts';

const redis = await integrationServer('REDIS_URL', 'redis://127.0.0.1:6379');
const TSC = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));

const click = {
  description: 'A click on an item shown by a recommendation',
  owner: 'growth-team',
  attributes: {
    position: { type: 'number', required: true },
    surface: { type: 'string', enum: ['home', 'search'] },
    promoted: { type: 'boolean' },
  },
};
const dwell = { description: 'Time spent on an item page', owner: 'growth-team', attributes: {}, value: { unit: 'seconds' } };

describe.each(['file', 'redis'] as const)('event catalogue on the %s store', (kind) => {
  describe.skipIf(kind === 'redis' && !redis.url)(`${kind}`, () => {
    let fixture: StoreFixture;
    let t: TestApp;

    beforeEach(async () => {
      fixture = await storeFixture(kind, redis.url);
      t = await startApp(fixture);
    });
    afterEach(async () => {
      await t.close();
      await fixture.cleanup();
    });

    const call = (method: 'GET' | 'PUT' | 'POST', url: string, role: TestRole, payload?: unknown, headers: Record<string, string> = {}) =>
      t.app.inject({ method, url, headers: { ...bearer(role), ...headers }, ...(payload === undefined ? {} : { payload: payload as object }) });

    it('takes a proposal from an editor, approval from a reviewer or an admin, and audits both', async () => {
      const proposed = await call('PUT', '/v1/events/click', 'editor', click);
      expect(proposed.statusCode).toBe(201);
      expect(proposed.json()).toMatchObject({ type: 'click', status: 'proposed', version: 1, proposedBy: 'pm-ann', approved: null, owner: 'growth-team' });
      expect((await call('PUT', '/v1/events/click', 'editor', click)).json()).toMatchObject({ status: 'proposed', version: 1 });

      expect((await call('POST', '/v1/events/click/approve', 'editor')).statusCode).toBe(403);
      expect((await call('POST', '/v1/events/click/approve', 'reviewer', undefined, { 'if-match': '"7"' })).statusCode).toBe(412);
      const approved = await call('POST', '/v1/events/click/approve', 'reviewer', undefined, { 'if-match': '"1"' });
      expect(approved.statusCode).toBe(200);
      expect(approved.json()).toMatchObject({ status: 'approved', approvedBy: 'rev-kai', approved: { owner: 'growth-team', attributes: click.attributes } });
      expect((await call('POST', '/v1/events/click/approve', 'admin')).json().error.code).toBe('BUNRYU_INVALID_TRANSITION');

      // A change is a new proposal; what was approved stays in force until it is approved too.
      const changed = await call('PUT', '/v1/events/click', 'reviewer', { ...click, owner: 'search-team' });
      expect(changed.statusCode).toBe(200);
      expect(changed.json()).toMatchObject({ status: 'proposed', version: 2, owner: 'search-team', approved: { owner: 'growth-team' } });
      expect((await call('POST', '/v1/events/click/approve', 'admin')).json()).toMatchObject({ status: 'approved', approvedBy: 'admin', approved: { owner: 'search-team' } });

      const audit = (await call('GET', '/v1/audit?subject=event:click', 'viewer')).json() as { action: string; actor: { name: string } }[];
      expect(audit.map((a) => [a.action, a.actor.name])).toEqual([
        ['propose', 'pm-ann'],
        ['approve', 'rev-kai'],
        ['propose-change', 'rev-kai'],
        ['approve', 'admin'],
      ]);
      const list = (await call('GET', '/v1/events', 'viewer')).json() as { type: string; status: string }[];
      expect(list.map((e) => [e.type, e.status])).toEqual([['click', 'approved']]);
    });

    it('refuses a viewer, and bad declarations with a 400 naming the field', async () => {
      expect((await call('PUT', '/v1/events/click', 'viewer', click)).statusCode).toBe(403);
      const cases: [string, unknown, string][] = [
        ['/v1/events/Click', click, 'type'],
        ['/v1/events/exposure', click, 'type'],
        ['/v1/events/shadow', click, 'type'],
        ['/v1/events/click', { ...click, owner: '' }, 'owner'],
        ['/v1/events/click', { ...click, description: undefined }, 'description'],
        ['/v1/events/click', { ...click, attributes: { position: { type: 'integer' } } }, 'attributes.position.type'],
        ['/v1/events/click', { ...click, attributes: { surface: { type: 'string', enum: ['home', 3] } } }, 'attributes.surface.enum.1'],
        ['/v1/events/click', { ...click, attributes: { 'bad name': { type: 'string' } } }, 'attributes'],
        ['/v1/events/click', { ...click, value: { unit: '' } }, 'value.unit'],
        ['/v1/events/click', { ...click, colour: 'red' }, ''],
      ];
      for (const [url, body, field] of cases) {
        const r = await call('PUT', url, 'editor', body);
        expect(r.statusCode, `${url} ${JSON.stringify(body)}`).toBe(400);
        const paths = (r.json().error.details.fields as { path: string }[]).map((f) => f.path);
        expect(paths.some((p) => p.startsWith(field)), `${paths.join(',')} names ${field}`).toBe(true);
      }
      expect((await call('GET', '/v1/events', 'viewer')).json()).toEqual([]);
      expect((await call('POST', '/v1/events/nope/approve', 'admin')).statusCode).toBe(404);
    });

    it('publishes the catalogue in /v1/config', async () => {
      await call('PUT', '/v1/events/click', 'editor', click);
      await call('PUT', '/v1/events/dwell', 'editor', dwell);
      await call('POST', '/v1/events/dwell/approve', 'admin');
      const snapshot = ConfigSnapshot.parse((await call('GET', '/v1/config', 'viewer')).json());
      expect(Object.keys(snapshot.events)).toEqual(['click', 'dwell']);
      expect(snapshot.events.click).toMatchObject({ status: 'proposed', approved: null });
      expect(snapshot.events.dwell!.approved).toEqual(dwell);
    });

    it('generates a JSON Schema of the approved events only', async () => {
      await call('PUT', '/v1/events/click', 'editor', click);
      await call('PUT', '/v1/events/dwell', 'editor', dwell);
      await call('POST', '/v1/events/click/approve', 'admin');
      const r = await call('GET', '/v1/events/catalogue.schema.json', 'viewer');
      expect(r.headers['content-type']).toMatch(/^application\/schema\+json/);
      const schema = r.json() as { oneOf: { $ref: string }[]; $defs: Record<string, { required: string[]; properties: Record<string, unknown> }> };
      expect(schema.oneOf).toEqual([{ $ref: '#/$defs/click' }]);
      expect(schema.$defs.click!.required).toEqual(['type', 'unitId', 'attributes']);
      expect(schema.$defs.click!.properties.attributes).toMatchObject({ required: ['position'], additionalProperties: false, properties: { surface: { type: 'string', enum: ['home', 'search'] } } });
    });
  });
});

describe('metrics on undeclared events', () => {
  let fixture: StoreFixture;
  let apps: TestApp[] = [];
  beforeEach(async () => {
    fixture = await storeFixture('file', undefined);
  });
  afterEach(async () => {
    await Promise.all(apps.map((a) => a.close()));
    apps = [];
    await fixture.cleanup();
  });

  async function app(policy: string): Promise<TestApp> {
    const t = await startApp(fixture, { BUNRYU_EVENT_POLICY: policy });
    apps.push(t);
    return t;
  }
  const put = (t: TestApp, key: string, payload: object) => t.app.inject({ method: 'PUT', url: `/v1/metrics/${key}`, headers: bearer('editor'), payload });

  it('refuses them when the policy is strict, naming the field, and accepts approved ones', async () => {
    const t = await app('strict');
    const r = await put(t, 'ctr', { type: 'ratio', numerator: { event: 'clik' }, denominator: { event: 'impression' } });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.details.fields.map((f: { path: string }) => f.path)).toEqual(['numerator.event', 'denominator.event']);
    expect(r.json().error.message).toMatch(/event clik is not declared/);
    await t.app.inject({ method: 'PUT', url: '/v1/events/click', headers: bearer('editor'), payload: click });
    expect((await put(t, 'clicks', { type: 'proportion', event: 'click' })).json().error.message).toMatch(/click is proposed but not approved/);
    await t.app.inject({ method: 'POST', url: '/v1/events/click/approve', headers: bearer('reviewer') });
    expect((await put(t, 'clicks', { type: 'proportion', event: 'click' })).statusCode).toBe(201);
  });

  it('warns about them otherwise (per-route strictness counts), and says nothing when open', async () => {
    const warn = await app('open,checkout:warn');
    const r = await put(warn, 'clicks', { type: 'proportion', event: 'clik' });
    expect(r.statusCode).toBe(201);
    expect(r.json().warnings).toEqual([{ path: 'event', message: 'event clik is not declared' }]);
    await warn.close();
    apps = [];
    const open = await app('open');
    const o = await put(open, 'clicks2', { type: 'proportion', event: 'clik' });
    expect(o.statusCode).toBe(201);
    expect(o.json().warnings).toBeUndefined();
  });
});

describe('catalogue.d.ts compiled by tsc', () => {
  let fixture: StoreFixture;
  let t: TestApp;
  let dir: string;
  beforeEach(async () => {
    fixture = await storeFixture('file', undefined);
    t = await startApp(fixture);
    dir = await mkdtemp(join(tmpdir(), 'bunryu-dts-'));
  });
  afterEach(async () => {
    await t.close();
    await fixture.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  async function tsc(source: string): Promise<{ code: number; output: string }> {
    await writeFile(join(dir, 'client.ts'), source);
    try {
      await promisify(execFile)(process.execPath, [TSC, '--noEmit', '--strict', '--target', 'ES2022', '--module', 'ESNext', '--moduleResolution', 'Bundler', join(dir, 'client.ts')], { cwd: dir });
      return { code: 0, output: '' };
    } catch (err) {
      const e = err as { code: number; stdout: string };
      return { code: e.code, output: e.stdout };
    }
  }

  it('types a correct event, and makes a misspelt type or a missing required attribute an error', async () => {
    for (const [type, body] of [
      ['click', click],
      ['dwell', dwell],
      ['add_to_cart', { description: 'proposed only', owner: 'x', attributes: {} }],
    ] as const) {
      await t.app.inject({ method: 'PUT', url: `/v1/events/${type}`, headers: bearer('editor'), payload: body });
      if (type !== 'add_to_cart') await t.app.inject({ method: 'POST', url: `/v1/events/${type}/approve`, headers: bearer('admin') });
    }
    const r = await t.app.inject({ method: 'GET', url: '/v1/events/catalogue.d.ts', headers: bearer('viewer') });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/typescript/);
    expect(r.body).toContain('export type BunryuEvent = ClickEvent | DwellEvent;');
    await writeFile(join(dir, 'catalogue.d.ts'), r.body);

    const header = "import type { BunryuEvent, BunryuEventBatch } from './catalogue';\n";
    const good = await tsc(
      header +
        "const a: BunryuEvent = { type: 'click', unitId: 'u-1', attributes: { position: 3, surface: 'home' } };\n" +
        "const b: BunryuEvent = { type: 'dwell', unitId: 'u-1', value: 12.5 };\n" +
        'export const batch: BunryuEventBatch = { events: [a, b] };\n',
    );
    expect(good).toEqual({ code: 0, output: '' });

    // One compilation for the bad cases (tsc starts slowly): each on its own line, each its own error.
    const bad = await tsc(
      header +
        "export const misspelt: BunryuEvent = { type: 'clik', unitId: 'u-1', attributes: { position: 1 } };\n" +
        "export const missing: BunryuEvent = { type: 'click', unitId: 'u-1', attributes: { surface: 'home' } };\n" +
        "export const badEnum: BunryuEvent = { type: 'click', unitId: 'u-1', attributes: { position: 1, surface: 'hmoe' } };\n" +
        "export const proposedOnly: BunryuEvent = { type: 'add_to_cart', unitId: 'u-1' };\n",
    );
    expect(bad.code).not.toBe(0);
    // Continuation lines (the indented detail of an error) are left out.
    const errors = bad.output.split('\n').filter((l) => l.startsWith('client.ts('));
    expect(errors, bad.output).toHaveLength(4);
    expect(errors[0]).toMatch(/^client\.ts\(2,\d+\): error TS2820: Type '"clik"' is not assignable to type '"click" \| "dwell"'\. Did you mean '"click"'\?/);
    expect(errors[1]).toMatch(/^client\.ts\(3,\d+\): error TS2741: Property 'position' is missing in type '\{ surface: "home"; \}'/);
    expect(errors[2]).toMatch(/^client\.ts\(4,\d+\): error TS2322: Type '"hmoe"' is not assignable to type '"search" \| "home" \| undefined'/);
    expect(errors[3]).toMatch(/^client\.ts\(5,\d+\): error TS2322: Type '"add_to_cart"' is not assignable/);
  }, 60_000);
});
