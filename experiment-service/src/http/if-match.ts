import type { IfMatch } from '../experiments/experiment-manager.ts';

/** Parses an If-Match header: `*`, or ETags such as `"3"`, `W/"3"` or a bare `3`, comma-separated. */
export function parseIfMatch(header: string | string[] | undefined): IfMatch {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header.join(',') : header;
  if (value.trim() === '*') return '*';
  return value
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1'))
    .filter((tag) => /^\d+$/.test(tag))
    .map(Number);
}

export function etagOf(version: number): string {
  return `"${version}"`;
}
