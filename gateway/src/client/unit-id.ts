import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { HTTP_FIELD_VALUE, createError } from '@bunryu/core';

export const UNIT_COOKIE = 'ab_uid';
/** The event schema's bound on `unitId`. */
export const MAX_UNIT_ID_LENGTH = 256;
const ONE_YEAR_SECONDS = 365 * 24 * 3600;

export interface UnitId {
  id: string;
  /** The id as header bytes (its UTF-8, one Latin-1 char a byte): what `x-ab-unit` carries upstream. */
  wire: string;
  /** True when the gateway made the id up: the answer must set the cookie. */
  issued: boolean;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A header value as node hands it over (one Latin-1 char per byte) read as the UTF-8 it must be,
 * so a unit id assigns alike from a header and from a JSON body; null when the bytes are not
 * UTF-8.
 */
export function headerText(value: string): string | null {
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) > 0x7f) {
      try {
        return strictUtf8.decode(Buffer.from(value, 'latin1'));
      } catch {
        return null;
      }
    }
  }
  return value;
}

function badHeader(message: string) {
  return createError('BUNRYU_VALIDATION', `x-unit-id: ${message}`, { fields: [{ path: 'x-unit-id', message }] });
}

/**
 * The unit a request is assigned as (SPEC §4): the `x-unit-id` header, else the `ab_uid` cookie,
 * else a new random id that the answer stores in that cookie. A header that is not UTF-8 is a
 * 400; such a cookie is not taken (the browser would send it forever) and a new id replaces it.
 */
export function unitIdOf(headers: IncomingHttpHeaders): UnitId {
  const header = headers['x-unit-id'];
  if (header !== undefined) {
    const wire = Array.isArray(header) ? header[0]! : header;
    const id = headerText(wire);
    if (id === null) throw badHeader('must be UTF-8');
    if (id.length === 0 || id.length > MAX_UNIT_ID_LENGTH) throw badHeader(`must be 1 to ${MAX_UNIT_ID_LENGTH} characters`);
    return { id, wire, issued: false };
  }
  const cookie = headers.cookie;
  if (cookie !== undefined) {
    const id = cookieValue(cookie, UNIT_COOKIE);
    if (id !== undefined && id.length > 0 && id.length <= MAX_UNIT_ID_LENGTH) {
      const wire = Buffer.from(id, 'utf8').toString('latin1');
      // The id goes upstream in `x-ab-unit`, and a percent-decoded cookie can hold what no header may (CR, LF): such an id is not taken.
      if (HTTP_FIELD_VALUE.test(wire)) return { id, wire, issued: false };
    }
  }
  const id = randomUUID();
  return { id, wire: id, issued: true };
}

export function unitCookie(id: string): string {
  return `${UNIT_COOKIE}=${encodeURIComponent(id)}; Path=/; Max-Age=${ONE_YEAR_SECONDS}; HttpOnly; SameSite=Lax`;
}

/** One cookie's value from a Cookie header, without parsing the others; undefined when absent or not UTF-8. */
export function cookieValue(header: string, name: string): string | undefined {
  const needle = name + '=';
  for (let i = header.indexOf(needle); i !== -1; i = header.indexOf(needle, i + 1)) {
    const before = i === 0 ? 32 : header.charCodeAt(i - 1);
    if (before !== 32 /* space */ && before !== 59 /* ; */ && before !== 9 /* tab */) continue;
    const end = header.indexOf(';', i);
    let value = header.slice(i + needle.length, end === -1 ? undefined : end).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (!value.includes('%')) return headerText(value) ?? undefined;
    try {
      return decodeURIComponent(value);
    } catch {
      return undefined; // not UTF-8 once decoded: no id
    }
  }
  return undefined;
}
