/**
 * A small seeded pseudo-random generator for reproducible synthetic inputs:
 * xoshiro128** (Blackman and Vigna), seeded through SplitMix32 from an
 * FNV-1a hash of a text. Not cryptographic; only reproducible on every
 * runtime (32-bit integer arithmetic with Math.imul, no platform state).
 *
 * @module
 */

/** FNV-1a 32-bit hash of the UTF-8 bytes of `text`. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A deterministic stream of numbers. */
export class Rng {
  #s: Uint32Array;

  /** A stream seeded by `text` (equal texts give equal streams). */
  constructor(text: string) {
    let x = fnv1a32(text);
    const s = new Uint32Array(4);
    for (let i = 0; i < 4; i++) {
      // SplitMix32 spreads the one hash over the four state words
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (s.every((v) => v === 0)) s[0] = 1; // the all-zero state is a fixed point
    this.#s = s;
  }

  /** The next 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.#s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextU32() >>> 5, lo = this.nextU32() >>> 6; // 27 + 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [a, b). */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.random();
  }

  /** Uniform integer in [0, n), n >= 1. */
  int(n: number): number {
    return Math.floor(this.random() * n);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
