import murmurhash from 'murmurhash';

export const BUCKETS = 10_000;

const encoder = new TextEncoder();
const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** UTF-8 bytes of a string; encode once and reuse (SPEC §7). */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** MurmurHash3 x86 32-bit, seed 0, unsigned, of the UTF-8 bytes of `s` (the reference: the `murmurhash` package). */
export function murmur3(s: string | Uint8Array): number {
  return murmurhash.v3(typeof s === 'string' ? encoder.encode(s) : s, 0);
}

/** bucket(s) = hash(s) mod 10000 (SPEC §3). */
export function bucket(s: string | Uint8Array): number {
  return murmur3(s) % BUCKETS;
}

/**
 * A prefix hashed ahead of time: MurmurHash3 reads 4-byte blocks in order, so the state after
 * the prefix's whole blocks is fixed; only its last 0–3 bytes have to be hashed with each unit.
 */
export interface HashPrefix {
  readonly state: number;
  readonly tail: Uint8Array;
  readonly length: number;
}

export function hashPrefix(prefix: string): HashPrefix {
  const bytes = encoder.encode(prefix);
  const whole = bytes.length - (bytes.length & 3);
  return { state: blocks(0, bytes, 0, whole), tail: bytes.slice(whole), length: bytes.length };
}

function blocks(h: number, b: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i += 4) {
    let k = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return h;
}

/**
 * Hashes `prefix + unit` for many prefixes and one unit. The unit id is written once per request
 * at the end of a scratch buffer (ASCII without TextEncoder, which costs more than the hash);
 * each hash copies the prefix's 0–3 tail bytes in front of it and continues from the prefix's
 * precomputed state, so the hot path allocates nothing. Equal to `murmur3(prefix + unit)`.
 */
export class PrefixHasher {
  private scratch = new Uint8Array(1024);
  private unitStart = this.scratch.length;

  /** Sets the unit for the following `hash`/`bucket` calls. */
  setUnit(unit: string): void {
    let bytes: Uint8Array | undefined;
    let length = unit.length;
    for (let i = 0; i < unit.length; i++) {
      if (unit.charCodeAt(i) > 0x7f) {
        bytes = encoder.encode(unit);
        length = bytes.length;
        break;
      }
    }
    if (length + 4 > this.scratch.length) this.scratch = new Uint8Array(length * 2 + 4);
    const start = this.scratch.length - length;
    if (bytes) this.scratch.set(bytes, start);
    else for (let i = 0; i < length; i++) this.scratch[start + i] = unit.charCodeAt(i);
    this.unitStart = start;
  }

  hash(prefix: HashPrefix): number {
    const b = this.scratch;
    const end = b.length;
    const from = this.unitStart - prefix.tail.length;
    for (let i = 0; i < prefix.tail.length; i++) b[from + i] = prefix.tail[i]!;
    const rest = (end - from) & 3;
    let h = blocks(prefix.state, b, from, end - rest);
    // Tail and finalization, as in MurmurHash3_x86_32.
    let k = 0;
    const t = end - rest;
    if (rest === 3) k ^= b[t + 2]! << 16;
    if (rest >= 2) k ^= b[t + 1]! << 8;
    if (rest >= 1) {
      k ^= b[t]!;
      k = Math.imul(k, C1);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, C2);
      h ^= k;
    }
    h ^= prefix.length + (end - this.unitStart);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
  }

  bucket(prefix: HashPrefix): number {
    return this.hash(prefix) % BUCKETS;
  }
}
