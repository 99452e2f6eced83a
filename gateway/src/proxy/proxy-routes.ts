import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { assign, createError, exposureEvent, formatAssignmentsHeader, type BunryuError } from '@bunryu/core';
import { attributesFromHeaders } from '../client/attributes.ts';
import { unitCookie, unitIdOf } from '../client/unit-id.ts';
import type { SnapshotStore } from '../config-source/snapshot-store.ts';
import type { EventPublisher } from '../events/event-publisher.ts';
import type { GatewayMetrics } from '../metrics/gateway-metrics.ts';
import { forward, UpstreamFailure, type ForwardRequest, type UpstreamResponse } from './forward.ts';
import { downstreamHeaders, upstreamHeaders } from './headers.ts';
import { upstreamPath, type RouteRuntime } from './route-table.ts';
import type { UpstreamPools } from './upstream-pools.ts';

export interface ProxyDeps {
  store: SnapshotStore;
  pools: UpstreamPools;
  publisher: EventPublisher;
  metrics: GatewayMetrics;
}

const PREFIX_LENGTH = '/v1/routes/'.length;
// Header values are Latin-1 on the wire; escape the rest so any params survive the hop as JSON.
const NON_ASCII = /[\u007f-\uffff]/;
const NON_ASCII_ALL = /[\u007f-\uffff]/g;

/**
 * `any /v1/routes/:route/*` (SPEC §4, request path steps 2–7): assign the unit, forward to the
 * route's (or the variant's) upstream with the A/B headers, answer with the upstream's answer or
 * the route's fallback, and queue the exposure. Bodies are taken as raw bytes, never parsed.
 */
export async function proxyRoutes(app: FastifyInstance, deps: ProxyDeps): Promise<void> {
  const { store, pools, publisher, metrics } = deps;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const live = store.current;
    if (!live) throw createError('BUNRYU_NOT_READY', 'no config snapshot loaded yet');
    const name = (request.params as { route: string }).route;
    const route = live.routes.get(name);
    if (!route) throw createError('BUNRYU_NOT_FOUND', `no route "${name}"`);

    const unit = unitIdOf(request.headers);
    const attributes = attributesFromHeaders(request.headers);
    const result = assign(live.snapshot, name, unit.id, attributes);
    const assignments = formatAssignmentsHeader(result.assignments);
    let params = JSON.stringify(result.params);
    if (NON_ASCII.test(params)) params = params.replace(NON_ASCII_ALL, escapeChar);

    const headers = upstreamHeaders(request.raw.rawHeaders, request.headers.connection);
    headers.push('x-ab-unit', unit.id, 'x-ab-assignments', assignments, 'x-ab-params', params, 'x-request-id', request.id);
    const upstream = result.upstream === undefined ? route.upstream : pools.resolve(result.upstream);
    const rest = restOfUrl(request.url);
    const forwarded: ForwardRequest = {
      method: request.method,
      path: upstreamPath(upstream, route, rest),
      headers,
      body: (request.body as Buffer | undefined) ?? null,
    };

    const started = performance.now();
    let response: UpstreamResponse | null = null;
    let failure: UpstreamFailure | null = null;
    try {
      response = await forward(upstream, forwarded, route.timeoutMs);
    } catch (err) {
      failure = err instanceof UpstreamFailure ? err : new UpstreamFailure('failed', String(err));
    }
    const latencyMs = performance.now() - started;
    // The exposure carries what the upstream really did, so error_rate sees failures hidden by a fallback.
    const upstreamStatus = response !== null ? response.status : failure!.kind === 'timeout' ? 504 : 502;
    const exposure = exposureEvent(
      result.assignments,
      { unitId: unit.id, route: name, requestId: request.id, ts: Date.now(), latencyMs: Math.round(latencyMs * 1000) / 1000, status: upstreamStatus, attributes },
      randomUUID(),
    );
    if (exposure) publisher.publish(unit.id, exposure);

    reply.header('x-ab-assignments', assignments);
    reply.header('x-request-id', request.id);
    if (unit.issued) reply.header('set-cookie', unitCookie(unit.id));

    if (response !== null && (response.status < 500 || route.fallback === null)) {
      metrics.request(name, result.assignments, response.status, latencyMs / 1000);
      return sendUpstream(reply, response);
    }
    if (route.fallback === null) {
      request.log.warn({ route: name, upstream: upstream.origin, err: failure!.message }, 'upstream failed, no fallback');
      metrics.request(name, result.assignments, upstreamStatus, latencyMs / 1000);
      const error = failureError(failure!);
      return reply.code(error.statusCode).send(error.toBody());
    }
    return answerFromFallback(request, reply, route, forwarded, response, failure, result.assignments, latencyMs);
  }

  async function answerFromFallback(
    request: FastifyRequest,
    reply: FastifyReply,
    route: RouteRuntime,
    forwarded: ForwardRequest,
    response: UpstreamResponse | null,
    failure: UpstreamFailure | null,
    assignments: Parameters<GatewayMetrics['request']>[1],
    latencyMs: number,
  ): Promise<FastifyReply> {
    const fallback = route.fallback!;
    const reason = response !== null ? 'status' : failure!.kind === 'timeout' ? 'timeout' : 'error';
    metrics.fallback(route.name, reason);
    request.log.warn({ route: route.name, reason, status: response?.status, err: failure?.message }, 'answering from the route fallback');
    reply.header('x-ab-fallback', 'true');
    if (fallback.kind === 'fixed') {
      metrics.request(route.name, assignments, fallback.status, latencyMs / 1000);
      for (let i = 0; i < fallback.headers.length; i += 2) reply.header(fallback.headers[i]!, fallback.headers[i + 1]!);
      return reply.code(fallback.status).send(fallback.body);
    }
    const second: ForwardRequest = { ...forwarded, path: upstreamPath(fallback.upstream, route, restOfUrl(request.url)) };
    try {
      const answer = await forward(fallback.upstream, second, route.timeoutMs);
      metrics.request(route.name, assignments, answer.status, latencyMs / 1000);
      return sendUpstream(reply, answer);
    } catch (err) {
      const error = failureError(err instanceof UpstreamFailure ? err : new UpstreamFailure('failed', String(err)));
      metrics.request(route.name, assignments, error.statusCode, latencyMs / 1000);
      return reply.code(error.statusCode).send(error.toBody());
    }
  }

  app.all('/v1/routes/:route', handle);
  app.all('/v1/routes/:route/*', handle);
}

function sendUpstream(reply: FastifyReply, response: UpstreamResponse): FastifyReply {
  const headers = downstreamHeaders(response.rawHeaders);
  for (let i = 0; i < headers.length; i += 2) reply.header(headers[i]!, headers[i + 1]!);
  return reply.code(response.status).send(response.body);
}

/** The client gets the catalogue message; the cause (addresses, errno) stays in the log. */
function failureError(failure: UpstreamFailure): BunryuError {
  return createError(failure.kind === 'timeout' ? 'BUNRYU_UPSTREAM_TIMEOUT' : 'BUNRYU_UPSTREAM_FAILED');
}

/** What follows `/v1/routes/<name>` in the URL, query string included, still encoded. */
function restOfUrl(url: string): string {
  let end = PREFIX_LENGTH;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === 47 /* / */ || c === 63 /* ? */) break;
    end++;
  }
  return url.slice(end);
}

function escapeChar(c: string): string {
  return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
}
