import { createHash } from 'node:crypto';
import { z } from 'zod';
import { createError } from '@bunryu/core';

/**
 * SPEC §4 roles, lowest first: each role may do everything the roles below it may. `reviewer`
 * (SPEC §16: approves event declarations) sits just above `editor`, so whoever proposes an event
 * as an editor cannot approve it, a reviewer can still propose and edit, and approving events
 * gives no power over traffic (ramp, promote, roll back stay with `releaser` and above).
 */
export const ROLES = ['viewer', 'editor', 'reviewer', 'releaser', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  role: Role;
  name: string;
}

export interface TokenEntry extends Principal {
  token: string;
}

export const DEFAULT_ADMIN_TOKEN = 'dev-admin-token';

export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}

export function roleAtLeast(role: Role, required: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(required);
}

/**
 * Parses `BUNRYU_TOKENS`: `role:token` or `role:name:token`, comma-separated. A name defaults to
 * `<role>-<n>`, n counting that role's tokens from 1. A token may itself contain `:` only in the
 * three-part form.
 */
export function parseTokenList(list: string): { tokens: TokenEntry[]; errors: string[] } {
  const tokens: TokenEntry[] = [];
  const errors: string[] = [];
  const perRole = new Map<Role, number>();
  list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .forEach((entry, i) => {
      const parts = entry.split(':');
      const role = parts[0] ?? '';
      if (!isRole(role)) {
        errors.push(`entry ${i + 1}: role must be one of ${ROLES.join(', ')} (got "${role}")`);
        return;
      }
      if (parts.length < 2) {
        errors.push(`entry ${i + 1}: expected role:token or role:name:token`);
        return;
      }
      const n = (perRole.get(role) ?? 0) + 1;
      perRole.set(role, n);
      const name = parts.length >= 3 ? parts[1]! : `${role}-${n}`;
      const token = parts.length >= 3 ? parts.slice(2).join(':') : parts[1]!;
      if (token.length < 8) errors.push(`entry ${i + 1} (${name}): the token must be at least 8 characters`);
      else if (!name) errors.push(`entry ${i + 1}: empty name`);
      else tokens.push({ role, name, token });
    });
  const seen = new Set<string>();
  for (const t of tokens) {
    if (seen.has(t.token)) errors.push(`the token of ${t.name} is used twice`);
    seen.add(t.token);
  }
  return { tokens, errors };
}

export interface TokenSettings {
  BUNRYU_ADMIN_TOKEN?: string | undefined;
  BUNRYU_TOKENS?: TokenEntry[] | undefined;
}

/**
 * Every accepted token. With none configured (a fresh `npm start`) the well-known
 * DEFAULT_ADMIN_TOKEN is accepted as admin and `defaultInUse` tells the caller to warn.
 */
export function resolveTokens(settings: TokenSettings): { tokens: TokenEntry[]; defaultInUse: boolean } {
  const tokens: TokenEntry[] = [];
  if (settings.BUNRYU_ADMIN_TOKEN) tokens.push({ role: 'admin', name: 'admin', token: settings.BUNRYU_ADMIN_TOKEN });
  tokens.push(...(settings.BUNRYU_TOKENS ?? []).filter((t) => t.token !== settings.BUNRYU_ADMIN_TOKEN));
  if (tokens.length > 0) return { tokens, defaultInUse: false };
  return { tokens: [{ role: 'admin', name: 'admin', token: DEFAULT_ADMIN_TOKEN }], defaultInUse: true };
}

const digest = (token: string) => createHash('sha256').update(token).digest('base64');

export interface FailureLimitOptions {
  /**
   * Failed token attempts one client address may make per window before every attempt it makes
   * is answered 429 until the window ends; 0: no limit.
   */
  failureLimit?: number;
  windowMs?: number;
  /** Addresses remembered at most; the oldest are forgotten first. */
  maxClients?: number;
  now?: () => number;
}
export type AuthenticatorOptions = FailureLimitOptions;

/** The default of BUNRYU_AUTH_FAILURE_LIMIT: failed attempts per client address per minute. */
export const DEFAULT_FAILURE_LIMIT = 10;

/**
 * Failed token attempts per client address, so guessing a token is slow: past the limit within a
 * window, the address is refused (429 with `details.retryAfterSeconds`) until the window ends.
 */
export class FailedAttempts {
  private readonly failures = new Map<string, { count: number; until: number }>();
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly maxClients: number;
  private readonly now: () => number;

  constructor(options: FailureLimitOptions = {}) {
    this.limit = options.failureLimit ?? DEFAULT_FAILURE_LIMIT;
    this.windowMs = options.windowMs ?? 60_000;
    this.maxClients = options.maxClients ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Throws 429 while `client` is over the limit. */
  check(client: string): void {
    if (this.limit === 0) return;
    const f = this.failures.get(client);
    if (!f) return;
    const now = this.now();
    if (now >= f.until) {
      this.failures.delete(client);
      return;
    }
    if (f.count < this.limit) return;
    const retryAfterSeconds = Math.max(1, Math.ceil((f.until - now) / 1000));
    throw createError('BUNRYU_RATE_LIMITED', `Too many failed token attempts from ${client}; try again in ${retryAfterSeconds} s`, { retryAfterSeconds });
  }

  fail(client: string): void {
    if (this.limit === 0) return;
    const now = this.now();
    const f = this.failures.get(client);
    if (f && now < f.until) {
      f.count++;
      return;
    }
    this.failures.delete(client);
    // Map order is insertion order: the first entries are the oldest windows.
    for (const [key, old] of this.failures) {
      if (this.failures.size < this.maxClients && now < old.until) break;
      this.failures.delete(key);
    }
    this.failures.set(client, { count: 1, until: now + this.windowMs });
  }
}

/**
 * Looks a bearer token up by its SHA-256 digest, so the lookup's timing says nothing about how
 * much of a guessed token was right; and, given the client's address, limits how fast that
 * address may guess (FailedAttempts).
 */
export class TokenAuthenticator {
  private readonly byDigest = new Map<string, Principal>();
  private readonly attempts: FailedAttempts;

  constructor(tokens: readonly TokenEntry[], options: AuthenticatorOptions = {}) {
    for (const t of tokens) this.byDigest.set(digest(t.token), { role: t.role, name: t.name });
    this.attempts = new FailedAttempts(options);
  }

  /**
   * The caller of a request with this Authorization header; 401 without a known bearer token,
   * 429 while `client` has failed too often.
   */
  authenticate(authorization: string | undefined, client?: string): Principal {
    if (client !== undefined) this.attempts.check(client);
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    const principal = match ? this.byDigest.get(digest(match[1]!)) : undefined;
    if (!principal) {
      if (client !== undefined) this.attempts.fail(client);
      throw createError('BUNRYU_UNAUTHORIZED', authorization ? 'Unknown bearer token' : 'An Authorization: Bearer <token> header is required');
    }
    return principal;
  }

  /** 401/403/429, or the caller when its role is at least `required`. */
  authorize(authorization: string | undefined, required: Role, client?: string): Principal {
    const principal = this.authenticate(authorization, client);
    if (!roleAtLeast(principal.role, required)) {
      throw createError('BUNRYU_FORBIDDEN', `This needs the ${required} role; ${principal.name} is ${principal.role}`, {
        required,
        role: principal.role,
      });
    }
    return principal;
  }
}

/** The authenticator of a service's token settings. */
export function authenticatorFor(settings: TokenSettings & { BUNRYU_AUTH_FAILURE_LIMIT?: number | undefined }, options: AuthenticatorOptions = {}): TokenAuthenticator {
  return new TokenAuthenticator(resolveTokens(settings).tokens, { failureLimit: settings.BUNRYU_AUTH_FAILURE_LIMIT ?? DEFAULT_FAILURE_LIMIT, ...options });
}

/**
 * A fastify `onRequest` hook: 401/403/429 unless the request carries a token of at least
 * `required`. It runs before the body is read, so an anonymous caller cannot make us parse 1 MiB.
 */
export function requireRole(auth: TokenAuthenticator, required: Role) {
  return async (request: { headers: { authorization?: string | undefined }; ip: string }): Promise<void> => {
    auth.authorize(request.headers.authorization, required, request.ip);
  };
}

/** The token settings every service that checks tokens reads (same names, same meaning). */
/** Failed token attempts per client address per minute before its requests get 429; 0: no limit. */
export const failureLimitEnv = {
  BUNRYU_AUTH_FAILURE_LIMIT: z.coerce.number().int().min(0).max(1_000_000).default(DEFAULT_FAILURE_LIMIT),
};

export const tokenEnv = {
  ...failureLimitEnv,
  BUNRYU_ADMIN_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
  /** `role:token` or `role:name:token`, comma-separated. */
  BUNRYU_TOKENS: z
    .string()
    .transform((s, ctx) => {
      const { tokens, errors } = parseTokenList(s);
      for (const message of errors) ctx.addIssue({ code: 'custom', message });
      return tokens;
    })
    .optional(),
};

/** The start-up warning when no token is configured and the well-known admin token is accepted. */
export function defaultTokenWarning(service: string, settings: TokenSettings): string | null {
  if (!resolveTokens(settings).defaultInUse) return null;
  return `${service}: WARNING no BUNRYU_ADMIN_TOKEN or BUNRYU_TOKENS is set: the default admin token "${DEFAULT_ADMIN_TOKEN}" is accepted. Set BUNRYU_ADMIN_TOKEN before exposing this service.\n`;
}
