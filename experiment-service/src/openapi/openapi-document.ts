import { z } from 'zod';
import { ERROR_CATALOGUE, KEY_PATTERN } from '@bunryu/core';
import type { Endpoint } from '../http/endpoint.ts';
import { requestSchemas, responseSchemas } from './schemas.ts';

type JsonObject = Record<string, unknown>;

/**
 * The OpenAPI 3.1 document of the given endpoints, with JSON Schemas generated from the zod
 * schemas the handlers parse with (requests as accepted input, answers as produced output).
 */
export function openApiDocument(endpoints: readonly Endpoint<never>[], info: { title: string; version: string; description?: string; license?: { name: string; identifier: string } }): JsonObject {
  const components = { ...componentSchemas(requestSchemas, 'input', 'RequestShared'), ...componentSchemas(responseSchemas, 'output', 'ResponseShared') };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const e of endpoints as readonly Endpoint<unknown>[]) {
    const path = e.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const parameters: JsonObject[] = [...e.url.matchAll(/:([A-Za-z]+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string', pattern: KEY_PATTERN.source },
    }));
    for (const [name, q] of Object.entries(e.query ?? {})) {
      parameters.push({ name, in: 'query', required: false, description: q.description, schema: q.enum ? { type: 'string', enum: q.enum } : { type: 'string' } });
    }
    if (e.ifMatch) {
      parameters.push({
        name: 'If-Match',
        in: 'header',
        required: e.ifMatch === 'required',
        description: 'The version the change is based on, as read from the ETag (`"3"` or `3`); a stale one is a 412',
        schema: { type: 'string' },
      });
    }
    const status = e.status ?? 200;
    const responses: JsonObject = {
      [status]: {
        description: status === 201 ? 'Created' : 'OK',
        content: { [e.produces ?? 'application/json']: e.response ? { schema: ref(responseSchemas, e.response, e) } : {} },
      },
    };
    for (const [code, description] of Object.entries(e.alsoAnswers ?? {})) responses[code] = { description };
    const errors = new Set(e.errors ?? []);
    if (e.body) errors.add('BUNRYU_VALIDATION').add('BUNRYU_INVALID_JSON').add('BUNRYU_PAYLOAD_TOO_LARGE');
    if (e.role) errors.add('BUNRYU_UNAUTHORIZED').add('BUNRYU_FORBIDDEN').add('BUNRYU_RATE_LIMITED');
    // Unknown query parameters are refused on every endpoint.
    errors.add('BUNRYU_VALIDATION');
    const byStatus = new Map<number, string[]>();
    for (const code of errors) {
      const s = ERROR_CATALOGUE[code].status;
      byStatus.set(s, [...(byStatus.get(s) ?? []), code]);
    }
    for (const [s, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
      responses[s] = { description: codes.join(', '), content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
      if (s === 429) (responses[s] as JsonObject).headers = { 'Retry-After': { description: 'Seconds until this address may try a token again', schema: { type: 'integer', minimum: 1 } } };
    }
    const operation: JsonObject = {
      operationId: e.operationId,
      summary: e.summary,
      ...(e.role ? { security: [{ bearer: [] }], 'x-bunryu-role': e.role } : { security: [] }),
      ...(parameters.length ? { parameters } : {}),
      ...(e.body ? { requestBody: { required: !e.body.safeParse(undefined).success, content: { 'application/json': { schema: ref(requestSchemas, e.body, e) } } } } : {}),
      responses,
    };
    (paths[path] ??= {})[e.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info,
    // Relative: the API is wherever this document was fetched from.
    servers: [{ url: '/', description: 'the experiment-service serving this document' }],
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'BUNRYU_ADMIN_TOKEN or one of BUNRYU_TOKENS; roles viewer < editor < reviewer < releaser < admin. After BUNRYU_AUTH_FAILURE_LIMIT failed attempts a minute, a client address gets 429 with Retry-After until the minute is over.',
        },
      },
    },
  };
}

function ref(registry: z.core.$ZodRegistry<{ id: string }>, schema: z.ZodType, e: Endpoint<unknown>): JsonObject {
  const id = registry.get(schema)?.id;
  if (!id) throw new Error(`${e.method} ${e.url}: its schema is not registered in openapi/schemas.ts`);
  return { $ref: `#/components/schemas/${id}` };
}

/**
 * Converts a registry to component schemas. zod puts schemas shared between components (the
 * recursive JSON value) under a `__shared` pseudo-component with refs like
 * `…/__shared#/$defs/schema0`, which OpenAPI cannot resolve: they become components of their own.
 */
function componentSchemas(registry: z.core.$ZodRegistry<{ id: string }>, io: 'input' | 'output', sharedPrefix: string): Record<string, JsonObject> {
  const { schemas } = z.toJSONSchema(registry, { io, unrepresentable: 'any', uri: (id) => `#/components/schemas/${id}` });
  const text = JSON.stringify(schemas).replaceAll('#/components/schemas/__shared#/$defs/', `#/components/schemas/${sharedPrefix}_`);
  const converted = JSON.parse(text) as Record<string, JsonObject>;
  const shared = (converted.__shared?.$defs ?? {}) as Record<string, JsonObject>;
  delete converted.__shared;
  for (const [name, schema] of Object.entries(shared)) converted[`${sharedPrefix}_${name}`] = schema;
  for (const schema of Object.values(converted)) {
    delete schema.$schema;
    delete schema.$id;
  }
  return converted;
}
