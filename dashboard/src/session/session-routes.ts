import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { createError, parseOrThrow } from '@bunryu/core';
import type { FailedAttempts } from '@bunryu/platform/auth';
import type { UpstreamClient } from '../proxy/upstream-client.ts';
import type { Identity, Session, SessionStore } from './session-store.ts';
import { SESSION_COOKIE, clearedSessionCookie, readCookie, sessionCookie } from './session-cookie.ts';

const SignIn = z.strictObject({ token: z.string().trim().min(1, 'enter your token').max(4096) });
const WhoAmI = z.object({ role: z.string().min(1), name: z.string().nullish() });

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in session, set by `requireSession`. */
    session?: Session;
  }
}

/** Whether the session cookie set in answer to this request is marked `Secure`. */
export type SecureCookie = (request: FastifyRequest) => boolean;

export interface SessionDeps {
  sessions: SessionStore;
  experimentService: UpstreamClient;
  secureCookie: SecureCookie;
  /** Refused sign-ins per browser address: guessing tokens through the dashboard is as slow as directly. */
  attempts: FailedAttempts;
}

/** Where the experiment-service tells a caller who they are (`/v1/me`; `/v1/whoami` elsewhere). */
const IDENTITY_PATHS = ['/v1/me', '/v1/whoami'];

/**
 * Asks the experiment-service who a token belongs to. Its identity endpoint names the role; a
 * service without one still proves the token valid through `GET /v1/experiments`, and the role
 * stays unknown (the UI then leaves every action to the service's own 403).
 */
export async function identify(es: UpstreamClient, token: string): Promise<Identity | 'rejected'> {
  const auth = { authorization: `Bearer ${token}` };
  for (const path of IDENTITY_PATHS) {
    const who = await es.json({ method: 'GET', path, headers: auth });
    if (who.status === 401 || who.status === 403) return 'rejected';
    if (who.status === 200) {
      const r = WhoAmI.safeParse(who.body);
      if (r.success) return { role: r.data.role, name: r.data.name ?? null };
    } else if (who.status !== 404 && who.status !== 405) {
      throw createError('BUNRYU_UPSTREAM_FAILED', `experiment-service answered ${who.status} to ${path}`);
    }
  }
  const list = await es.json({ method: 'GET', path: '/v1/experiments', headers: auth });
  if (list.status === 401 || list.status === 403) return 'rejected';
  if (list.status !== 200) throw createError('BUNRYU_UPSTREAM_FAILED', `experiment-service answered ${list.status}`);
  return { role: null, name: null };
}

export function sessionIdOf(request: FastifyRequest): string | undefined {
  return readCookie(request.headers.cookie, SESSION_COOKIE);
}

/** A preHandler: 401 unless the request carries a live session. */
export function requireSession(sessions: SessionStore) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const session = await sessions.get(sessionIdOf(request));
    if (!session) {
      void reply.header('cache-control', 'no-store');
      throw createError('BUNRYU_UNAUTHORIZED', 'sign in first');
    }
    request.session = session;
  };
}

export function registerSessionRoutes(app: FastifyInstance, deps: SessionDeps): void {
  const cookieOpts = (request: FastifyRequest) => ({ secure: deps.secureCookie(request) });

  app.post('/api/session', async (request, reply) => {
    const { token } = parseOrThrow(SignIn, request.body);
    deps.attempts.check(request.ip);
    const identity = await identify(deps.experimentService, token);
    if (identity === 'rejected') {
      deps.attempts.fail(request.ip);
      throw createError('BUNRYU_UNAUTHORIZED', 'the experiment-service does not accept this token');
    }
    await deps.sessions.delete(sessionIdOf(request));
    const id = await deps.sessions.create(token, identity);
    return reply.header('set-cookie', sessionCookie(id, cookieOpts(request))).header('cache-control', 'no-store').send(identity);
  });

  app.get('/api/session', { preHandler: requireSession(deps.sessions) }, async (request, reply) => {
    const s = request.session!;
    return reply.header('cache-control', 'no-store').send({ role: s.role, name: s.name } satisfies Identity);
  });

  app.delete('/api/session', async (request, reply) => {
    await deps.sessions.delete(sessionIdOf(request));
    return reply.header('set-cookie', clearedSessionCookie(cookieOpts(request))).status(204).send();
  });
}
