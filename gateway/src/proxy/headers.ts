/**
 * Header rules of the forwarding hop. Hop-by-hop headers (RFC 9110 §7.6.1) never cross it; the
 * A/B headers are the gateway's to set, so a client cannot spoof them; the client's API key stays
 * with the gateway.
 */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

const DROPPED_UPSTREAM = new Set([
  ...HOP_BY_HOP,
  'host',
  // the body is re-sent from a buffer; undici sets the length itself
  'content-length',
  'x-api-key',
  'x-ab-unit',
  'x-ab-assignments',
  'x-ab-params',
  'x-ab-fallback',
  'x-request-id',
]);

const DROPPED_DOWNSTREAM = new Set([...HOP_BY_HOP, 'x-ab-assignments', 'x-ab-fallback', 'x-request-id']);

/**
 * The client's headers as a flat list for undici, minus what must not be forwarded, including
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

/** The upstream's answer headers as `[lowercase name, value]` pairs that may reach the client. */
export function downstreamHeaders(rawHeaders: readonly Buffer[]): string[] {
  const out: string[] = [];
  let named: Set<string> | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i]!.toString('latin1').toLowerCase();
    if (DROPPED_DOWNSTREAM.has(lower)) {
      if (lower === 'connection') {
        const value = rawHeaders[i + 1]!.toString('latin1');
        if (value !== 'keep-alive' && value !== 'close') named = connectionTokens(value);
      }
      continue;
    }
    out.push(lower, rawHeaders[i + 1]!.toString('latin1'));
  }
  if (named === null) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!named.has(out[i]!)) kept.push(out[i]!, out[i + 1]!);
  return kept;
}

function connectionTokens(value: string): Set<string> {
  return new Set(value.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t !== 'close' && t !== 'keep-alive' && t !== ''));
}
