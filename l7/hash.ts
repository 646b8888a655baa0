/**
 * String hashing for the L7 switch: a 32-bit FNV-1a over UTF-16 code units followed by
 * the murmur3 finalizer, so that keys differing in one character land far apart on the
 * ring. Also KTCPVS's historical byte-sum hash, kept for comparison benchmarks.
 * @module
 */

/** Hashes `text` to an unsigned 32-bit integer, well mixed (FNV-1a + fmix32). */
export function hash32(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** The murmur3 32-bit finalizer: spreads every input bit over the whole word. */
export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * KTCPVS's `chash` key: the sum of the URL's bytes. Servers were picked as
 * `sum % count`, so any change in the count remaps almost every URL.
 */
export function byteSum(text: string): number {
  let sum = 0;
  for (let i = 0; i < text.length; i++) sum += text.charCodeAt(i) & 0xff;
  return sum;
}
