import type { ConfigSnapshot, Route } from '@bunryu/core';
import type { Upstream, UpstreamPools } from './upstream-pools.ts';

export type RouteFallback =
  | { kind: 'upstream'; upstream: Upstream }
  | { kind: 'fixed'; status: number; body: Buffer; headers: string[] };

/** A route as the hot path needs it, resolved once per snapshot. */
export interface RouteRuntime {
  name: string;
  upstream: Upstream;
  /** The route's path without a trailing slash ('' for '/'). */
  path: string;
  timeoutMs: number;
  fallback: RouteFallback | null;
  shadow: RouteShadow | null;
}

/** A route's shadow (SPEC §13) as the hot path needs it. */
export interface RouteShadow {
  params: Record<string, unknown>;
  /** Requests whose id hashes below this bucket (of 10,000) are shadowed. */
  threshold: number;
  upstream: Upstream;
  compare: string;
  /** A copy's deadline: the shadow's own, else the route's. */
  timeoutMs: number;
}

export function buildRouteTable(snapshot: ConfigSnapshot, pools: UpstreamPools): Map<string, RouteRuntime> {
  const table = new Map<string, RouteRuntime>();
  for (const [name, route] of Object.entries(snapshot.routes)) {
    table.set(name, {
      name,
      upstream: pools.resolve(route.upstream),
      path: route.path.replace(/\/+$/, ''),
      timeoutMs: route.timeoutMs,
      fallback: fallbackOf(route, pools),
      shadow: route.shadow
        ? {
            params: route.shadow.params,
            threshold: Math.round(route.shadow.percent * 100),
            upstream: route.shadow.upstream ? pools.resolve(route.shadow.upstream) : pools.resolve(route.upstream),
            compare: route.shadow.compare ?? 'predictions',
            timeoutMs: route.shadow.timeoutMs ?? route.timeoutMs,
          }
        : null,
    });
  }
  return table;
}

function fallbackOf(route: Route, pools: UpstreamPools): RouteFallback | null {
  const f = route.fallback;
  if (!f) return null;
  if ('upstream' in f) return { kind: 'upstream', upstream: pools.resolve(f.upstream) };
  // A string body is sent as is; anything else as JSON.
  const text = typeof f.body === 'string' ? f.body : JSON.stringify(f.body ?? null);
  const headers: string[] = [];
  let hasType = false;
  for (const [name, value] of Object.entries(f.headers ?? {})) {
    headers.push(name.toLowerCase(), value);
    if (name.toLowerCase() === 'content-type') hasType = true;
  }
  if (!hasType) headers.push('content-type', typeof f.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8');
  return { kind: 'fixed', status: f.status, body: Buffer.from(text), headers };
}

/**
 * The upstream path for a request: the upstream's base path, the route's path, then whatever
 * followed `/v1/routes/<name>` in the client's URL (query string included, as sent).
 */
export function upstreamPath(upstream: Upstream, route: RouteRuntime, rest: string): string {
  const path = upstream.basePath + route.path + rest;
  return path.length === 0 || path.charCodeAt(0) !== 47 /* / */ ? '/' + path : path;
}

/** A running interleaving experiment as the proxy needs it: its two variants' params and upstreams. */
export interface InterleavedExperiment {
  key: string;
  variants: readonly [InterleavedVariant, InterleavedVariant];
}

export interface InterleavedVariant {
  key: string;
  params: Record<string, unknown>;
  /** The variant's own upstream; absent: the route's. */
  upstream?: Upstream;
}

export function interleavedExperiments(snapshot: ConfigSnapshot, pools: UpstreamPools): Map<string, InterleavedExperiment> {
  const out = new Map<string, InterleavedExperiment>();
  for (const e of snapshot.experiments) {
    if (e.status !== 'running' || e.design !== 'interleave' || e.variants.length !== 2) continue;
    const variant = (v: (typeof e.variants)[number]): InterleavedVariant => ({ key: v.key, params: v.params ?? {}, ...(v.upstream ? { upstream: pools.resolve(v.upstream) } : {}) });
    out.set(e.key, { key: e.key, variants: [variant(e.variants[0]!), variant(e.variants[1]!)] });
  }
  return out;
}
