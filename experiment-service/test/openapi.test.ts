import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '@bunryu/core';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import { storeFixture, testConfig, type StoreFixture } from './support/service.ts';

describe('OpenAPI document and docs page', () => {
  let fixture: StoreFixture;
  let app: FastifyInstance;
  let doc: { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } };
  const routes: string[] = [];

  beforeAll(async () => {
    fixture = await storeFixture('file', undefined);
    const store = await fixture.open();
    app = await buildApp(testConfig(), { store, close: () => store.close() });
    await app.ready();
    const r = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(r.statusCode).toBe(200);
    doc = r.json();
    routes.push(...listRoutes(app.printRoutes({ commonPrefix: false, includeHooks: false })));
  });
  afterAll(async () => {
    await app.close();
    await fixture.cleanup();
  });

  it('is OpenAPI 3.1 and needs no token', () => {
    expect(doc.openapi).toBe('3.1.0');
  });

  it('describes every endpoint of the service (plumbing aside)', () => {
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    const plumbing = new Set(['GET /healthz', 'GET /readyz', 'GET /metrics']);
    const served = routes.filter((r) => !plumbing.has(r) && !r.startsWith('HEAD '));
    expect(served.length).toBeGreaterThan(20);
    expect(documented.sort()).toEqual(served.sort());
  });

  it('names every operation once, for client generators', () => {
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((o) => o.operationId));
    expect(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('resolves every $ref to a component', () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      expect(ref).toMatch(/^#\/components\/schemas\/[A-Za-z0-9_]+$/);
      expect(doc.components.schemas).toHaveProperty(ref.split('/').pop()!);
    }
  });

  it('takes the request schemas from the zod schemas the service parses with', () => {
    const def = doc.components.schemas.ExperimentDefinition as { additionalProperties: boolean; required: string[]; properties: Record<string, unknown> };
    expect(def.additionalProperties).toBe(false);
    expect(def.required).toEqual(expect.arrayContaining(['key', 'route', 'variants']));
    expect(def.required).not.toContain('salt'); // defaulted: optional as input
    const create = doc.paths['/v1/experiments']!.post!;
    expect(create.requestBody?.content['application/json']?.schema).toEqual({ $ref: '#/components/schemas/ExperimentDefinition' });
    expect(Object.keys(create.responses).sort()).toEqual(['201', '400', '401', '403', '409', '413', '429']);
    expect(create.responses['429']).toMatchObject({ headers: { 'Retry-After': expect.any(Object) } });
    const put = doc.paths['/v1/experiments/{key}']!.put!;
    expect(Object.keys(put.responses)).toEqual(expect.arrayContaining(['412', '428']));
    expect(put.parameters?.find((p) => p.name === 'If-Match')).toMatchObject({ in: 'header', required: true });
  });

  it('documents the error body with every code of the catalogue', () => {
    const error = doc.components.schemas.Error as { properties: { error: { properties: { code: { enum: string[] } } } } };
    expect(error.properties.error.properties.code.enum.sort()).toEqual(Object.keys(ERROR_CATALOGUE).sort());
  });

  it('renders a docs page without external resources', async () => {
    const r = await app.inject({ method: 'GET', url: '/docs' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    for (const path of Object.keys(doc.paths)) expect(r.body).toContain(path);
    expect(r.body).not.toMatch(/<script|https?:\/\/(?!127)/);
  });
});

interface Operation {
  operationId: string;
  parameters?: { name: string; in: string; required: boolean }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, unknown>;
}

/** `METHOD /path/{param}` of every route in fastify's printRoutes tree (4 characters per level). */
function listRoutes(tree: string): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^(.*?)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = [...m[1]!].length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    for (const method of m[3]?.split(', ') ?? []) out.push(`${method} ${stack.join('').replace(/:([A-Za-z]+)/g, '{$1}')}`);
  }
  return out;
}
