import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { createError } from '@bunryu/core';
import { createHttpServer } from '@bunryu/platform';
import { FailedAttempts } from '@bunryu/platform/auth';
import type { Config } from './config.ts';
import type { Deps } from './compose.ts';
import { registerStaticAssets } from './assets/static-assets.ts';
import { registerProxyRoutes } from './proxy/proxy-routes.ts';
import { registerSessionRoutes, type SecureCookie } from './session/session-routes.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The dashboard: the static UI plus a backend-for-frontend under /api/ that holds each user's
 * token server-side and forwards to the experiment-service and the aggregator.
 */
export async function buildApp(config: Readonly<Config>, deps: Deps): Promise<FastifyInstance> {
  const app = createHttpServer({
    service: 'dashboard',
    logLevel: config.LOG_LEVEL,
    // request.protocol and request.ip believe X-Forwarded-* only from these proxies.
    fastify: { trustProxy: config.TRUST_PROXY as FastifyServerOptions['trustProxy'] },
    readiness: [
      { name: 'sessions', check: () => deps.sessions.ping() },
      { name: 'experiment-service', check: () => reachable(deps.experimentService.request({ method: 'GET', path: '/healthz' })) },
      { name: 'aggregator', check: () => reachable(deps.aggregator.request({ method: 'GET', path: '/healthz' })) },
    ],
  });

  // The session cookie is SameSite=Strict already; refusing cross-origin writes outright is the
  // second lock on the door (a browser always sends Origin on cross-origin POSTs).
  app.addHook('onRequest', async (request) => {
    if (SAFE_METHODS.has(request.method) || !request.url.startsWith('/api/')) return;
    const origin = request.headers.origin;
    if (request.headers['sec-fetch-site'] === 'cross-site' || (origin !== undefined && originHost(origin) !== request.headers.host)) {
      throw createError('BUNRYU_FORBIDDEN', 'cross-origin requests are refused');
    }
  });

  const secureCookie: SecureCookie =
    config.COOKIE_SECURE === 'auto' ? (request) => request.protocol === 'https' : () => config.COOKIE_SECURE === 'true' || config.COOKIE_SECURE === '1';
  const attempts = new FailedAttempts({ failureLimit: config.BUNRYU_AUTH_FAILURE_LIMIT });
  registerSessionRoutes(app, { sessions: deps.sessions, experimentService: deps.experimentService, secureCookie, attempts });
  await registerProxyRoutes(app, { ...deps, secureCookie });
  await registerStaticAssets(app);
  return app;
}

function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined; // "null" (sandboxed or file pages) and garbage never match
  }
}

async function reachable(p: Promise<{ status: number }>): Promise<void> {
  const res = await p;
  if (res.status >= 500) throw new Error(`answered ${res.status}`);
}
