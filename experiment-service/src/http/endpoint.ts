import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { validationError, type ErrorCode } from '@bunryu/core';
import type { Principal, Role, TokenAuthenticator } from '@bunryu/platform/auth';
import type { IfMatch } from '../experiments/experiment-manager.ts';
import { parseIfMatch } from './if-match.ts';

export interface EndpointContext<B> {
  request: FastifyRequest;
  reply: FastifyReply;
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  body: B;
  /** The caller; undefined only on public endpoints. */
  principal: Principal | undefined;
  ifMatch: IfMatch;
}

/**
 * One HTTP endpoint, described once: the route is registered from it, its body parsed with its
 * schema, its role enforced, and the OpenAPI document generated from it.
 */
export interface Endpoint<B = unknown> {
  method: 'GET' | 'PUT' | 'POST';
  url: string;
  /** Unique and stable: client generators name their methods after it. */
  operationId: string;
  summary: string;
  /** The lowest role allowed; null: no token needed. */
  role: Role | null;
  /** Schemas of the URL parameters, checked with the body so one 400 names every bad field. */
  params?: Record<string, z.ZodType>;
  body?: z.ZodType<B>;
  response?: z.ZodType;
  /** `text/html` etc. for answers that are not JSON. */
  produces?: string;
  status?: number;
  errors?: ErrorCode[];
  ifMatch?: 'required' | 'optional';
  query?: Record<string, { description: string; enum?: readonly string[] }>;
  /** Statuses beyond `status` and the errors, e.g. 201 of an upsert that created. */
  alsoAnswers?: Record<number, string>;
  handler(ctx: EndpointContext<B>): Promise<unknown>;
}

export function endpoint<B = undefined>(e: Endpoint<B>): Endpoint<B> {
  return e;
}

export function registerEndpoints(app: FastifyInstance, auth: TokenAuthenticator, endpoints: readonly Endpoint<never>[]): void {
  // Principals live beside the request rather than on it: no global FastifyRequest augmentation.
  const principals = new WeakMap<FastifyRequest, Principal>();
  for (const e of endpoints as readonly Endpoint<unknown>[]) {
    const role = e.role;
    app.route({
      method: e.method,
      url: e.url,
      // A HEAD of an event stream would hold a connection open with nothing to say.
      exposeHeadRoute: e.produces !== 'text/event-stream',
      // Authorization runs before the body is read, so an anonymous caller cannot make us parse 1 MiB.
      onRequest: role
        ? async (request) => {
            principals.set(request, auth.authorize(request.headers.authorization, role, request.ip));
          }
        : undefined,
      handler: async (request, reply) => {
        const params = request.params as Record<string, string>;
        const issues: { path: PropertyKey[]; message: string }[] = [];
        // A parameter this endpoint does not know is a mistake (a misspelt filter, a paging
        // parameter it lacks): ignoring it would answer something other than what was asked.
        const query = request.query as Record<string, string | undefined>;
        for (const name of Object.keys(query)) {
          if (!Object.hasOwn(e.query ?? {}, name)) issues.push({ path: [name], message: unknownQuery(e) });
        }
        for (const [name, schema] of Object.entries(e.params ?? {})) {
          const r = schema.safeParse(params[name]);
          if (!r.success) issues.push(...r.error.issues.map((i) => ({ path: [name, ...i.path], message: i.message })));
        }
        let body: unknown;
        if (e.body) {
          const r = e.body.safeParse(request.body);
          if (r.success) body = r.data;
          else issues.push(...r.error.issues);
        }
        if (issues.length > 0) throw validationError(issues);
        const result = await e.handler({
          request,
          reply,
          params,
          query,
          body,
          principal: principals.get(request),
          ifMatch: parseIfMatch(request.headers['if-match']),
        });
        if (reply.sent) return reply;
        if (e.status && reply.statusCode === 200) void reply.code(e.status);
        return result;
      },
    });
  }
}

function unknownQuery(e: Endpoint<unknown>): string {
  const known = Object.keys(e.query ?? {});
  return `is not a query parameter of ${e.method} ${e.url}` + (known.length ? ` (it takes ${known.join(', ')})` : ' (it takes none)');
}
