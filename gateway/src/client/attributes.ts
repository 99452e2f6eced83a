import type { IncomingHttpHeaders } from 'node:http';

export type AttributeValue = string | number | boolean;
export type Attributes = Record<string, AttributeValue>;

const PREFIX = 'x-ab-attr-';
const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?$/;
export const NO_ATTRIBUTES: Attributes = Object.freeze({}) as Attributes;

/**
 * Targeting attributes from `x-ab-attr-<name>` headers. Header values are text, so a value that
 * reads as a JSON number or boolean becomes one: `x-ab-attr-age: 30` then matches `gte 18`, as
 * the same attribute sent in a JSON body would.
 */
export function attributesFromHeaders(headers: IncomingHttpHeaders): Attributes {
  let attributes: Attributes | null = null;
  for (const name in headers) {
    if (name.length <= PREFIX.length || !name.startsWith(PREFIX)) continue;
    const raw = headers[name];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value === undefined) continue;
    (attributes ??= {})[name.slice(PREFIX.length)] = coerce(value.trim());
  }
  return attributes ?? NO_ATTRIBUTES;
}

function coerce(value: string): AttributeValue {
  if (value === 'true') return true;
  if (value === 'false') return false;
  if (value.length <= 17 && NUMBER.test(value)) return Number(value);
  return value;
}
