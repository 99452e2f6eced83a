import murmurhash from 'murmurhash';

export const BUCKETS = 10_000;

const encoder = new TextEncoder();

/** UTF-8 bytes of a string; encode once and reuse (SPEC §7: hashing bytes is ~12× faster than strings). */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** MurmurHash3 x86 32-bit, seed 0, unsigned, of the UTF-8 bytes of `s`. */
export function murmur3(s: string | Uint8Array): number {
  return murmurhash.v3(typeof s === 'string' ? encoder.encode(s) : s, 0);
}

/** bucket(s) = hash(s) mod 10000 (SPEC §3). */
export function bucket(s: string | Uint8Array): number {
  return murmur3(s) % BUCKETS;
}

/**
 * Hashes `prefix + unit` without building the joined string: the unit id is encoded once per
 * request and each experiment's prefix once per snapshot, then both are copied into one scratch
 * buffer per call.
 */
export class PrefixHasher {
  private scratch = new Uint8Array(256);

  bucket(prefix: Uint8Array, unit: Uint8Array): number {
    const length = prefix.length + unit.length;
    if (length > this.scratch.length) this.scratch = new Uint8Array(length * 2);
    this.scratch.set(prefix, 0);
    this.scratch.set(unit, prefix.length);
    return murmurhash.v3(this.scratch.subarray(0, length), 0) % BUCKETS;
  }
}
