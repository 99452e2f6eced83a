import { createError } from '@bunryu/core';

export type AbParams = Readonly<Record<string, unknown>>;

const EMPTY: AbParams = Object.freeze({});
const CACHE_LIMIT = 1000;
/** A route has a handful of distinct parameter sets (one per variant): parse each once. */
const cache = new Map<string, AbParams>();

/**
 * `x-ab-params` as the gateway sends it: the JSON object of the unit's merged experiment
 * parameters. Absent or empty means "no parameters" (the model's defaults).
 */
export function parseAbParams(header: string | string[] | undefined): AbParams {
  if (header === undefined || header === '') return EMPTY;
  if (Array.isArray(header)) throw createError('BUNRYU_VALIDATION', 'x-ab-params: must be sent once', { fields: [{ path: 'x-ab-params', message: 'must be sent once' }] });
  const hit = cache.get(header);
  if (hit) return hit;
  let parsed: unknown;
  try {
    parsed = JSON.parse(header);
  } catch {
    throw invalidParam('x-ab-params', 'must be a JSON object');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalidParam('x-ab-params', 'must be a JSON object');
  const params = Object.freeze(parsed as Record<string, unknown>);
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(header, params);
  return params;
}

export function invalidParam(path: string, message: string, extra?: Record<string, unknown>) {
  return createError('BUNRYU_VALIDATION', `${path}: ${message}`, { fields: [{ path, message }], ...extra });
}
