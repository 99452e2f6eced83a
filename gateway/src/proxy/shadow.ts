import { randomUUID } from 'node:crypto';
import { asciiJson, hashPrefix, PrefixHasher } from '@bunryu/core';
import type { EventSink } from '../events/event-publisher.ts';
import { shadowJson } from '../events/event-json.ts';
import type { GatewayMetrics } from '../metrics/gateway-metrics.ts';
import type { ForwardRequest, UpstreamFailure, UpstreamResponse } from './upstream-client.ts';
import { upstreamPath, type RouteRuntime } from './route-table.ts';

/** The compared field of an answer is kept up to this size (JSON text); larger, it is left out of the event. */
export const MAX_SHADOW_OUTPUT_BYTES = 16 * 1024;
/** The request id's bucket is hashed as a unit with no prefix: without TextEncoder's allocation, on every request of the route. */
const NO_PREFIX = hashPrefix('');

/** What the client was answered, as the shadow event reports it. */
export interface PrimaryOutcome {
  /** The unit's params as forwarded (`x-ab-params`). */
  paramsJson: string;
  status: number;
  latencyMs: number;
  body: Buffer | null;
}

/**
 * Shadow traffic (SPEC §13): a copy of a shadowed request goes to the route's shadow once the
 * client's answer is on its way, so it can neither delay nor change that answer. At most
 * `maxInFlight` copies are pending in this process; beyond that a copy is dropped and counted,
 * never queued or retried. Which requests are shadowed follows the request id's bucket, so the
 * share is exact over many requests and the same request is always treated the same.
 */
export class ShadowCalls {
  private inFlight = 0;
  private readonly queued: Copy[] = [];
  private readonly hasher = new PrefixHasher();
  /** Who waits for the last pending copy to settle. */
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly publisher: EventSink,
    private readonly metrics: GatewayMetrics,
    private readonly maxInFlight: number,
  ) {}

  get pending(): number {
    return this.inFlight;
  }

  /**
   * Resolves once no copy is pending: a gateway stopping waits for them before its event log
   * closes, so the pairs of requests it answered are written. Each copy ends by its shadow's
   * timeout, so the wait does too.
   */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Whether the request is in the route's shadowed share: asked first, so the others cost nothing more. */
  wants(route: RouteRuntime, requestId: string): boolean {
    if (route.shadow === null) return false;
    this.hasher.setUnit(requestId);
    return this.hasher.bucket(NO_PREFIX) < route.shadow.threshold;
  }

  /** Queues the copy of `forwarded` (a request `wants` took); it goes out after this turn's answers. */
  mirror(route: RouteRuntime, forwarded: ForwardRequest, rest: string, requestId: string, unitId: string, primary: PrimaryOutcome): void {
    if (route.shadow === null) return;
    if (this.inFlight >= this.maxInFlight) return this.metrics.shadow(route.name, 'dropped');
    this.inFlight++;
    this.metrics.shadow(route.name, 'sent');
    if (this.queued.push({ route, forwarded, rest, requestId, unitId, primary }) === 1) setImmediate(this.sendQueued);
  }

  /** Copies wait for the end of the turn: the answers of every request read in it go out first. */
  private readonly sendQueued = (): void => {
    const copies = this.queued.splice(0);
    for (const copy of copies) this.send(copy);
  };

  private send({ route, forwarded, rest, requestId, unitId, primary }: Copy): void {
    const shadow = route.shadow!;
    const paramsJson = asciiJson({ ...(JSON.parse(primary.paramsJson) as Record<string, unknown>), ...shadow.params });
    const headers = forwarded.headers.slice();
    const at = headers.indexOf('x-ab-params');
    if (at >= 0) headers[at + 1] = paramsJson;
    headers.push('x-ab-shadow', 'true');
    const copy: ForwardRequest = { ...forwarded, headers, path: upstreamPath(shadow.upstream, route, rest) };
    const started = performance.now();
    shadow.upstream.client.send(copy, shadow.timeoutMs, (failure: UpstreamFailure | null, response: UpstreamResponse | null) => {
      this.inFlight--;
      const latencyMs = Math.round((performance.now() - started) * 1000) / 1000;
      const status = response !== null ? response.status : failure!.kind === 'timeout' ? 504 : 502;
      const json = shadowJson({
        eventId: randomUUID(),
        ts: Date.now(),
        unitId,
        route: route.name,
        requestId,
        compare: shadow.compare,
        primary: { paramsJson: primary.paramsJson, status: primary.status, latencyMs: primary.latencyMs, outputJson: compared(primary.body, shadow.compare) },
        shadow: { paramsJson, status, latencyMs, outputJson: compared(response?.body ?? null, shadow.compare) },
      });
      this.publisher.publishJson(unitId, json);
      if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    });
  }
}

interface Copy {
  route: RouteRuntime;
  forwarded: ForwardRequest;
  rest: string;
  requestId: string;
  unitId: string;
  primary: PrimaryOutcome;
}

/** The top-level field `name` of a JSON answer as JSON text, when it has one of at most MAX_SHADOW_OUTPUT_BYTES. */
function compared(body: Buffer | null, name: string): string | undefined {
  if (body === null || body.length === 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !(name in parsed)) return undefined;
  const text = JSON.stringify((parsed as Record<string, unknown>)[name]);
  return text !== undefined && text.length <= MAX_SHADOW_OUTPUT_BYTES ? text : undefined;
}
