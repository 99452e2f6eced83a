/**
 * Header rules of the forwarding hop. Hop-by-hop headers (RFC 9110 §7.6.1) never cross it; the
 * A/B headers are the gateway's to set, so a client cannot spoof them; the client's API key stays
 * with the gateway.
 */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

const DROPPED_UPSTREAM = new Set([
  ...HOP_BY_HOP,
  'host',
  // the body is re-sent from a buffer with its own length, and was already read in full
  'content-length',
  'expect',
  'x-api-key',
  'x-ab-unit',
  'x-ab-assignments',
  'x-ab-params',
  'x-ab-fallback',
  'x-request-id',
]);

const DROPPED_DOWNSTREAM = new Set([...HOP_BY_HOP, 'x-ab-assignments', 'x-ab-fallback', 'x-request-id']);

/**
 * The client's headers as a flat list for the upstream client, minus what must not be forwarded, including
 * any header the client's `Connection` header names.
 */
export function upstreamHeaders(rawHeaders: readonly string[], connection: string | undefined): string[] {
  const out: string[] = [];
  const named = connection ? connectionTokens(connection) : null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (DROPPED_UPSTREAM.has(lower) || (named !== null && named.has(lower))) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  return out;
}

/** The upstream's answer headers (`[lowercase name, value…]`) that may reach the client. */
export function downstreamHeaders(headers: readonly string[]): string[] {
  const out: string[] = [];
  let named: Set<string> | null = null;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (DROPPED_DOWNSTREAM.has(name)) {
      if (name === 'connection') {
        const value = headers[i + 1]!;
        if (value !== 'keep-alive' && value !== 'close') named = connectionTokens(value);
      }
      continue;
    }
    out.push(name, headers[i + 1]!);
  }
  if (named === null) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!named.has(out[i]!)) kept.push(out[i]!, out[i + 1]!);
  return kept;
}

function connectionTokens(value: string): Set<string> {
  return new Set(value.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t !== 'close' && t !== 'keep-alive' && t !== ''));
}
