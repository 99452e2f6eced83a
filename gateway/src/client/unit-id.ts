import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { HTTP_FIELD_VALUE, createError } from '@bunryu/core';

export const UNIT_COOKIE = 'ab_uid';
/** The event schema's bound on `unitId`. */
export const MAX_UNIT_ID_LENGTH = 256;
const ONE_YEAR_SECONDS = 365 * 24 * 3600;

export interface UnitId {
  id: string;
  /** True when the gateway made the id up: the answer must set the cookie. */
  issued: boolean;
}

/**
 * The unit a request is assigned as (SPEC §4): the `x-unit-id` header, else the `ab_uid` cookie,
 * else a new random id that the answer stores in that cookie.
 */
export function unitIdOf(headers: IncomingHttpHeaders): UnitId {
  const header = headers['x-unit-id'];
  if (header !== undefined) {
    const id = Array.isArray(header) ? header[0]! : header;
    if (id.length === 0 || id.length > MAX_UNIT_ID_LENGTH) {
      throw createError('BUNRYU_VALIDATION', `x-unit-id: must be 1 to ${MAX_UNIT_ID_LENGTH} characters`, {
        fields: [{ path: 'x-unit-id', message: `must be 1 to ${MAX_UNIT_ID_LENGTH} characters` }],
      });
    }
    return { id, issued: false };
  }
  const cookie = headers.cookie;
  if (cookie !== undefined) {
    const id = cookieValue(cookie, UNIT_COOKIE);
    // The id goes upstream in `x-ab-unit`, and a percent-decoded cookie can hold what no header may (CR, LF): such an id is not taken.
    if (id !== undefined && id.length > 0 && id.length <= MAX_UNIT_ID_LENGTH && HTTP_FIELD_VALUE.test(id)) return { id, issued: false };
  }
  return { id: randomUUID(), issued: true };
}

export function unitCookie(id: string): string {
  return `${UNIT_COOKIE}=${encodeURIComponent(id)}; Path=/; Max-Age=${ONE_YEAR_SECONDS}; HttpOnly; SameSite=Lax`;
}

/** One cookie's value from a Cookie header, without parsing the others. */
export function cookieValue(header: string, name: string): string | undefined {
  const needle = name + '=';
  for (let i = header.indexOf(needle); i !== -1; i = header.indexOf(needle, i + 1)) {
    const before = i === 0 ? 32 : header.charCodeAt(i - 1);
    if (before !== 32 /* space */ && before !== 59 /* ; */ && before !== 9 /* tab */) continue;
    const end = header.indexOf(';', i);
    let value = header.slice(i + needle.length, end === -1 ? undefined : end).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (!value.includes('%')) return value;
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return undefined;
}
