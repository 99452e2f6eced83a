import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { BunryuError, asciiJson, assignForwarding, clientErrorBody, createError, interleave, type Assignment, type ExposureContext } from '@bunryu/core';
import { attributesFromHeaders } from '../client/attributes.ts';
import { unitCookie, unitIdOf } from '../client/unit-id.ts';
import type { SnapshotStore } from '../config-source/snapshot-store.ts';
import { exposureJson } from '../events/event-json.ts';
import type { EventSink } from '../events/event-publisher.ts';
import type { Logger } from '@bunryu/platform';
import type { GatewayMetrics } from '../metrics/gateway-metrics.ts';
import { answerHasBody } from './http1/wire.ts';
import { UpstreamFailure, type ForwardRequest, type UpstreamResponse } from './upstream-client.ts';
import { downstreamHeaders, upstreamHeaders } from './headers.ts';
import { upstreamPath, type InterleavedExperiment, type RouteRuntime } from './route-table.ts';
import type { UpstreamPools } from './upstream-pools.ts';
import type { ShadowCalls } from './shadow.ts';

export interface RouteProxyDeps {
  store: SnapshotStore;
  pools: UpstreamPools;
  publisher: EventSink;
  metrics: GatewayMetrics;
  logger: Logger;
  /** BUNRYU_CLIENT_KEYS; null when unset. */
  clientKeys: ReadonlySet<string> | null;
  shadows: ShadowCalls;
}

/** What the proxy reads of a request: node's IncomingMessage, or the gateway's own HTTP server (raw-http.ts). */
export interface ProxyRequest {
  readonly method: string;
  /** Path and query as sent. */
  readonly url: string;
  /** `[name, value, …]` as received. */
  readonly rawHeaders: readonly string[];
  /** Lowercase names; repeated fields joined as node:http joins them. */
  readonly headers: IncomingHttpHeaders;
}

/** Where the proxy writes its one answer. */
export interface ProxyReply {
  readonly sent: boolean;
  /** Status, `[lowercase name, value, …]` and the whole body; the reply sets the framing headers. */
  send(status: number, headers: string[], body: Buffer | string): void;
  /** The answer cannot be completed: drop the connection. */
  abort(): void;
}

/** A ProxyReply on node's ServerResponse. */
export class NodeReply implements ProxyReply {
  constructor(private readonly res: ServerResponse) {}

  get sent(): boolean {
    return this.res.headersSent;
  }

  send(status: number, headers: string[], body: Buffer | string): void {
    const { res } = this;
    // The length is set here: headers given to writeHead without one make node chunk a 1.1
    // answer and close the connection after a 1.0 one, keep-alive asked or not.
    if (answerHasBody(res.req.method, status)) {
      const sized: string[] = [];
      for (let i = 0; i < headers.length; i += 2) if (headers[i] !== 'content-length') sized.push(headers[i]!, headers[i + 1]!);
      sized.push('content-length', String(typeof body === 'string' ? Buffer.byteLength(body) : body.length));
      headers = sized;
    }
    res.writeHead(status, headers);
    // An answer queued behind another on its connection may already hold a 100 Continue; node
    // would put the head of a Buffer body in front of it (OutgoingMessage._send unshifts it),
    // while a head sent on its own goes behind it.
    if (res.socket === null) res.flushHeaders();
    res.end(body);
  }

  abort(): void {
    this.res.destroy();
  }
}

export const ROUTES_PREFIX = '/v1/routes/';
const PREFIX_LENGTH = ROUTES_PREFIX.length;

/** `/v1/routes/<something>`: a request for the route proxy. */
export function isRouteUrl(url: string): boolean {
  return url.length > PREFIX_LENGTH && url.startsWith(ROUTES_PREFIX);
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * `any /v1/routes/:route/*` (SPEC §4, request path steps 2–7) on a ProxyRequest and ProxyReply: assign
 * the unit, forward to the route's (or the variant's) upstream with the A/B headers, answer with
 * the upstream's answer or the route's fallback, and queue the exposure. The gateway's own server
 * (raw-http.ts), node:http's fast path (fast-path.ts) and the fastify route (proxy-routes.ts) hand
 * requests here.
 */
export class RouteProxy {
  constructor(private readonly deps: RouteProxyDeps) {}

  /**
   * Answers one request whose body (if any) has been read; never throws. Callbacks rather than
   * async functions on this path: a promise and an await per step were a measurable share of a
   * request's CPU (ADR 0004).
   */
  serve(req: ProxyRequest, res: ProxyReply, requestId: string, body: Buffer | null): void {
    try {
      this.proxy(req, res, requestId, body);
    } catch (err) {
      this.failed(err, req, res, requestId);
    }
  }

  private failed(err: unknown, req: ProxyRequest, res: ProxyReply, requestId: string): void {
    const error = err instanceof BunryuError ? err : createError('BUNRYU_INTERNAL');
    if (error.statusCode >= 500) this.deps.logger.error({ err: String(err), url: req.url }, 'route request failed');
    if (!res.sent) sendError(res, error, requestId);
    else res.abort();
  }

  private proxy(req: ProxyRequest, res: ProxyReply, requestId: string, body: Buffer | null): void {
    const { store, pools, publisher, metrics, clientKeys } = this.deps;
    if (clientKeys !== null) {
      const key = req.headers['x-api-key'];
      if (typeof key !== 'string' || !clientKeys.has(key)) {
        throw createError('BUNRYU_UNAUTHORIZED', key === undefined ? 'x-api-key is required' : 'x-api-key is not a known client key');
      }
    }
    const live = store.current;
    if (!live) throw createError('BUNRYU_NOT_READY', 'no config snapshot loaded yet');
    const url = req.url;
    const nameEnd = routeNameEnd(url);
    const name = decodeName(url.slice(PREFIX_LENGTH, nameEnd));
    const route = live.routes.get(name);
    if (!route) throw createError('BUNRYU_NOT_FOUND', `no route "${name}"`);

    const unit = unitIdOf(req.headers);
    const attributes = attributesFromHeaders(req.headers);
    // Header values are Latin-1 on the wire: the params come as ASCII-only JSON.
    const result = assignForwarding(live.snapshot, name, unit.id, attributes);
    const assignments = result.assignmentsHeader;

    const headers = upstreamHeaders(req.rawHeaders, req.headers.connection);
    headers.push('x-ab-unit', unit.wire, 'x-ab-assignments', assignments, 'x-ab-params', result.paramsJson, 'x-request-id', requestId);
    const rest = url.slice(nameEnd);
    if (live.interleaved.size > 0) {
      const pick = result.assignments.find((a) => !a.forced && live.interleaved.has(a.experiment));
      if (pick) return this.interleaved({ req, res, requestId, body, route, name, unit, attributes, result, experiment: live.interleaved.get(pick.experiment)!, headers, rest });
    }
    const upstream = result.upstream === undefined ? route.upstream : pools.resolve(result.upstream);
    const forwarded: ForwardRequest = { method: req.method, path: upstreamPath(upstream, route, rest), headers, body };

    const started = performance.now();
    upstream.client.send(forwarded, route.timeoutMs, (failure, response) => {
      const latencyMs = performance.now() - started;
      // The exposure carries what the upstream really did, so error_rate sees failures hidden by a fallback.
      const upstreamStatus = response !== null ? response.status : failure!.kind === 'timeout' ? 504 : 502;
      const upstreamAnswers = response !== null && (response.status < 500 || route.fallback === null);
      // Assigned vs served (SPEC §11): did the answer come from the assigned variant's model, or the route's fallback?
      const served: 'route' | 'model' | undefined = upstreamAnswers ? (modelFellBack(response!.headers) ? 'model' : undefined) : route.fallback !== null ? 'route' : undefined;
      const answer = () => {
        try {
          const own = ['x-ab-assignments', assignments, 'x-request-id', requestId];
          if (unit.issued) own.push('set-cookie', unitCookie(unit.id));
          if (upstreamAnswers) {
            metrics.request(name, result.assignments, response!.status, latencyMs / 1000);
            sendUpstream(res, response!, own);
          } else if (route.fallback === null) {
            this.deps.logger.warn({ route: name, upstream: upstream.origin, err: failure!.message, requestId }, 'upstream failed, no fallback');
            metrics.request(name, result.assignments, upstreamStatus, latencyMs / 1000);
            sendError(res, failureError(failure!), requestId, own);
          } else {
            own.push('x-ab-fallback', 'true');
            this.answerFromFallback(res, route, forwarded, rest, response, failure, result.assignments, latencyMs, own, requestId).catch((err: unknown) =>
              this.failed(err, req, res, requestId),
            );
          }
        } catch (err) {
          this.failed(err, req, res, requestId);
        }
      };
      // The shadow's copy goes out once the answer has (SPEC §13: it never delays it).
      const answered = route.shadow === null || !this.deps.shadows.wants(route, requestId) ? answer : () => {
        answer();
        this.deps.shadows.mirror(route, forwarded, rest, requestId, unit.id, { paramsJson: result.paramsJson, status: upstreamStatus, latencyMs: Math.round(latencyMs * 1000) / 1000, body: response?.body ?? null });
      };
      if (result.exposureAssignmentsJson === null) return answered();
      this.answerAndExpose(answered, () => {
        const context: ExposureContext = { unitId: unit.id, route: name, requestId, ts: Date.now(), latencyMs: Math.round(latencyMs * 1000) / 1000, status: upstreamStatus, attributes };
        if (served !== undefined) context.fallback = served;
        publisher.publishJson(unit.id, exposureJson(result.exposureAssignmentsJson!, context, randomUUID())!);
      });
    });
  }

  private answerAndExpose(answer: () => void, publish: () => void): void {
    const { publisher } = this.deps;
    if (!publisher.flushBeforeAnswer()) {
      // Serialized and queued once the answer is on its way: the event adds nothing to its latency.
      answer();
      return publish();
    }
    // The event log is down: the exposure goes to the disk spill before the answer, so that a
    // gateway killed now does not lose it. The answer goes out whatever the disk says.
    publish();
    publisher.flush().then(answer, answer);
  }

  /**
   * SPEC §13: both variants' rankings requested in parallel with their own params (the unit's
   * other params as assigned), merged by team-draft interleaving seeded by the request id, and
   * answered as one list `{"items": […]}`; the exposure records each item's variant. When one
   * side fails (an error, a timeout, an answer without a list) the other's answer is served as it
   * came and the request is not credited; when both fail, the route's fallback answers as for any
   * request. The exposure's status is the worse of the two, so either ranker's errors count.
   */
  private interleaved(r: InterleavedRequest): void {
    const { res, requestId, route, name, unit, attributes, result, experiment } = r;
    const { publisher, metrics } = this.deps;
    const base = JSON.parse(result.paramsJson) as Record<string, unknown>;
    const paramsAt = r.headers.indexOf('x-ab-params') + 1;
    const legs = experiment.variants.map((v) => {
      const headers = r.headers.slice();
      headers[paramsAt] = asciiJson({ ...base, ...v.params });
      const upstream = v.upstream ?? route.upstream;
      return { variant: v.key, upstream, forwarded: { method: r.req.method, path: upstreamPath(upstream, route, r.rest), headers, body: r.body } as ForwardRequest };
    });
    const started = performance.now();
    const outcomes: { failure: UpstreamFailure | null; response: UpstreamResponse | null; list: RankedItem[] | null }[] = [];
    let pending = legs.length;
    const done = () => {
      const latencyMs = performance.now() - started;
      const statusOf = (o: (typeof outcomes)[number]) => (o.response !== null ? o.response.status : o.failure!.kind === 'timeout' ? 504 : 502);
      const status = Math.max(...outcomes.map((o) => (o.list === null ? Math.max(statusOf(o), 502) : statusOf(o))));
      const own = ['x-ab-assignments', result.assignmentsHeader, 'x-request-id', requestId];
      if (unit.issued) own.push('set-cookie', unitCookie(unit.id));
      const [a, b] = outcomes as [(typeof outcomes)[number], (typeof outcomes)[number]];
      let interleaving: ExposureContext['interleaving'];
      let merged: unknown[] | undefined;
      if (a.list !== null && b.list !== null) {
        const m = interleave(a.list.map((it) => it.key), b.list.map((it) => it.key), requestId, Math.max(a.list.length, b.list.length));
        const byKey = [new Map(a.list.map((it) => [it.key, it.item])), new Map(b.list.map((it) => [it.key, it.item]))];
        merged = m.items.map((key, i) => byKey[m.teams[i] === 'a' ? 0 : 1]!.get(key));
        interleaving = { experiment: experiment.key, items: m.items, teams: m.teams.map((t) => legs[t === 'a' ? 0 : 1]!.variant) };
      }
      const answer = () => {
        try {
          if (merged !== undefined) {
            metrics.request(name, result.assignments, 200, latencyMs / 1000);
            res.send(200, ['content-type', JSON_TYPE, 'x-ab-interleaved', experiment.key, ...own], JSON.stringify({ items: merged }));
          } else if (a.list !== null || b.list !== null) {
            const served = a.list !== null ? a : b;
            metrics.request(name, result.assignments, served.response!.status, latencyMs / 1000);
            sendUpstream(res, served.response!, own);
          } else if (route.fallback === null) {
            metrics.request(name, result.assignments, status, latencyMs / 1000);
            sendError(res, failureError(a.failure ?? b.failure ?? new UpstreamFailure('failed', 'no ranked list in either answer')), requestId, own);
          } else {
            own.push('x-ab-fallback', 'true');
            this.answerFromFallback(res, route, legs[0]!.forwarded, r.rest, a.response, a.failure, result.assignments, latencyMs, own, requestId).catch((err: unknown) =>
              this.failed(err, r.req, res, requestId),
            );
          }
        } catch (err) {
          this.failed(err, r.req, res, requestId);
        }
      };
      if (result.exposureAssignmentsJson === null) return answer();
      this.answerAndExpose(answer, () => {
        const context: ExposureContext = { unitId: unit.id, route: name, requestId, ts: Date.now(), latencyMs: Math.round(latencyMs * 1000) / 1000, status, attributes };
        if (interleaving) context.interleaving = interleaving;
        else if (merged === undefined && route.fallback !== null && a.list === null && b.list === null) context.fallback = 'route';
        publisher.publishJson(unit.id, exposureJson(result.exposureAssignmentsJson!, context, randomUUID())!);
      });
    };
    legs.forEach((leg, i) =>
      leg.upstream.client.send(leg.forwarded, route.timeoutMs, (failure, response) => {
        outcomes[i] = { failure, response, list: response !== null && response.status < 300 ? rankedItems(response.body) : null };
        if (--pending === 0) done();
      }),
    );
  }

  private async answerFromFallback(
    res: ProxyReply,
    route: RouteRuntime,
    forwarded: ForwardRequest,
    rest: string,
    response: UpstreamResponse | null,
    failure: UpstreamFailure | null,
    assignments: readonly Assignment[],
    latencyMs: number,
    own: string[],
    requestId: string,
  ): Promise<void> {
    const { metrics, logger } = this.deps;
    const fallback = route.fallback!;
    const reason = response !== null ? 'status' : failure!.kind === 'timeout' ? 'timeout' : 'error';
    metrics.fallback(route.name, reason);
    logger.warn({ route: route.name, reason, status: response?.status, err: failure?.message, requestId }, 'answering from the route fallback');
    if (fallback.kind === 'fixed') {
      metrics.request(route.name, assignments, fallback.status, latencyMs / 1000);
      res.send(fallback.status, fallback.headers.concat(own), fallback.body);
      return;
    }
    const second: ForwardRequest = { ...forwarded, path: upstreamPath(fallback.upstream, route, rest) };
    try {
      const answer = await fallback.upstream.client.request(second, route.timeoutMs);
      metrics.request(route.name, assignments, answer.status, latencyMs / 1000);
      sendUpstream(res, answer, own);
    } catch (err) {
      const error = failureError(err instanceof UpstreamFailure ? err : new UpstreamFailure('failed', String(err)));
      metrics.request(route.name, assignments, error.statusCode, latencyMs / 1000);
      sendError(res, error, requestId, own);
    }
  }
}

interface InterleavedRequest {
  req: ProxyRequest;
  res: ProxyReply;
  requestId: string;
  body: Buffer | null;
  route: RouteRuntime;
  name: string;
  unit: ReturnType<typeof unitIdOf>;
  attributes: ExposureContext['attributes'];
  result: ReturnType<typeof assignForwarding>;
  experiment: InterleavedExperiment;
  headers: string[];
  rest: string;
}

interface RankedItem {
  /** The item's id as text: what the merge and the clicks name. */
  key: string;
  item: unknown;
}

/** The `items` of a ranked answer (`{"items": [{"id": …}, …]}`), null when the body is not one. */
function rankedItems(body: Buffer): RankedItem[] | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  const items = (parsed as { items?: unknown } | null)?.items;
  if (!Array.isArray(items)) return null;
  const out: RankedItem[] = [];
  for (const item of items) {
    const id = (item as { id?: unknown } | null)?.id;
    if (typeof id !== 'string' && typeof id !== 'number') return null;
    out.push({ key: String(id), item });
  }
  return out;
}

/** The model-server says it answered with its fallback version (`x-model-fallback: true`). */
function modelFellBack(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'x-model-fallback') return headers[i + 1] === 'true';
  return false;
}

function sendUpstream(res: ProxyReply, response: UpstreamResponse, own: string[]): void {
  const headers = downstreamHeaders(response.headers);
  for (let i = 0; i < own.length; i++) headers.push(own[i]!);
  res.send(response.status, headers, response.body);
}

/** The shared error body (`{"error": {code, message, details?}}`), written without fastify. */
export function sendError(res: ProxyReply, error: BunryuError, requestId: string, own?: string[]): void {
  const body = JSON.stringify(clientErrorBody(error));
  const headers = ['content-type', JSON_TYPE];
  if (own) headers.push(...own);
  else headers.push('x-request-id', requestId);
  res.send(error.statusCode, headers, body);
}

/** The client gets the catalogue message; the cause (addresses, errno) stays in the log. */
function failureError(failure: UpstreamFailure): BunryuError {
  return createError(failure.kind === 'timeout' ? 'BUNRYU_UPSTREAM_TIMEOUT' : 'BUNRYU_UPSTREAM_FAILED');
}

/** Where the route name ends in `/v1/routes/<name>[/…][?…]`. */
function routeNameEnd(url: string): number {
  let end = PREFIX_LENGTH;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === 47 /* / */ || c === 63 /* ? */) break;
    end++;
  }
  return end;
}

function decodeName(raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
