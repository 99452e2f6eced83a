import { z } from 'zod';
import { parseOrThrow } from '@bunryu/core';
import { docsPage } from '../openapi/docs-page.ts';
import { AuditLog, Caller, OpenApiDocument } from '../openapi/schemas.ts';
import type { ExperimentStore } from '../store/experiment-store.ts';
import { withChanges } from './audit-view.ts';
import { endpoint, type Endpoint } from './endpoint.ts';

const Limit = z.coerce.number().int().min(1).max(10_000);

/** Who am I, the whole audit log, and the API's own description. */
export function metaEndpoints(store: ExperimentStore, document: () => Record<string, unknown>): Endpoint<never>[] {
  return [
    endpoint({
      method: 'GET',
      url: '/v1/me',
      operationId: 'getMe',
      summary: "The caller's role and name",
      role: 'viewer',
      response: Caller,
      handler: async ({ principal }) => principal,
    }),
    endpoint({
      method: 'GET',
      url: '/v1/audit',
      operationId: 'listAudit',
      summary: 'The audit log of every change (experiments, routes, metrics, holdout), oldest first',
      role: 'viewer',
      response: AuditLog,
      query: {
        subject: { description: 'Only this subject: experiment:<key>, route:<key>, metric:<key> or holdout' },
        limit: { description: 'Only the last n entries (default 1000)' },
      },
      handler: async ({ query }) => {
        const limit = parseOrThrow(Limit, query.limit ?? '1000', 'limit');
        return (await store.audit({ subject: query.subject, limit })).map(withChanges);
      },
    }),
    endpoint({
      method: 'GET',
      url: '/openapi.json',
      operationId: 'getOpenApi',
      summary: 'This OpenAPI document',
      role: null,
      response: OpenApiDocument,
      handler: async () => document(),
    }),
    endpoint({
      method: 'GET',
      url: '/docs',
      operationId: 'getDocs',
      summary: 'The API documentation as a page',
      role: null,
      produces: 'text/html',
      handler: async ({ reply }) => reply.type('text/html; charset=utf-8').send(docsPage(document())),
    }),
  ] as Endpoint<never>[];
}
