/**
 * The hashing schedulers as the kernel runs them: dh and sh with 256-slot tables
 * (ip_vs_dh.c, ip_vs_sh.c) and mh, Maglev hashing over a 4093-slot prime table with the
 * kernel's fixed SipHash keys (ip_vs_mh.c), so a given client maps to the same slot as
 * in the kernel.
 * @module
 */
import { parseIpv6 } from "../../config/address.ts";
import {
  NO_CACHE,
  type PickContext,
  type SchedDest,
  type Scheduler,
  type SchedulerOptions,
} from "./types.ts";

/** Slots in the dh and sh tables. */
export const HASH_TABLE_SIZE = 256;
/** Slots in the mh lookup table (the kernel's default prime). */
export const MH_TABLE_SIZE = 4093;
const MH_TAB_BITS = 6;

/**
 * An address folded to 32 bits as the kernel does before hashing: an IPv4 address in
 * host order; IPv6 as the XOR of its four 32-bit words; anything else by FNV-1a.
 */
export function foldAddress(address: string): number {
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (v4) return ((+v4[1] << 24) | (+v4[2] << 16) | (+v4[3] << 8) | +v4[4]) >>> 0;
  const v6 = address.includes(":") ? parseIpv6(address) : undefined;
  if (v6) {
    let x = 0;
    for (let i = 0; i < 8; i += 2) x ^= (v6[i] << 16) | v6[i + 1];
    return x >>> 0;
  }
  let h = 0x811c9dc5;
  for (let i = 0; i < address.length; i++) {
    h ^= address.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The kernel's `hash_32(val, bits)`: multiply by the golden ratio, keep the top bits. */
export function hash32(value: number, bits: number): number {
  return Math.imul(value >>> 0, 0x61c88647) >>> (32 - bits);
}

/** dh's slot of a destination address. */
export function dhSlot(address: string): number {
  return (Math.imul(foldAddress(address), 2654435761 | 0) >>> 0) & (HASH_TABLE_SIZE - 1);
}

/** sh's slot of a source address and port (port 0 unless `sh-port`), plus `offset`. */
export function shSlot(address: string, port: number, offset = 0): number {
  return (offset + hash32((port + foldAddress(address)) >>> 0, 8)) % HASH_TABLE_SIZE;
}

function unavailable(d: SchedDest): boolean {
  return d.weight <= 0 || !!d.overloaded;
}

/**
 * Destination hashing: a 256-slot table filled with the destinations in list order,
 * one slot each, round and round (weights do not matter); the destination address
 * picks the slot. An unusable destination there means no destination.
 */
export function createDestinationHash(): Scheduler {
  let table: (SchedDest | undefined)[] = [];
  return {
    name: "dh",
    ...NO_CACHE,
    update(dests) {
      table = new Array(HASH_TABLE_SIZE);
      for (let i = 0; i < HASH_TABLE_SIZE && dests.length; i++) table[i] = dests[i % dests.length];
    },
    pick(context: PickContext = {}) {
      const d = table[dhSlot(context.destination?.address ?? "0.0.0.0")];
      return d && !unavailable(d) ? d : undefined;
    },
  };
}

/**
 * Source hashing: a 256-slot table where each destination takes `weight` consecutive
 * slots in turn (at least one, even at weight 0); the client address (and port with
 * `sh-port`) picks the slot. With `sh-fallback`, an unusable destination there is
 * replaced by probing further slots with the offset added to the hash.
 */
export function createSourceHash(options: SchedulerOptions = {}): Scheduler {
  const fallback = options.flags?.includes("sh-fallback") ?? false;
  const usePort = options.flags?.includes("sh-port") ?? false;
  let table: (SchedDest | undefined)[] = [];
  return {
    name: "sh",
    ...NO_CACHE,
    update(dests) {
      table = new Array(HASH_TABLE_SIZE);
      if (!dests.length) return;
      let p = 0;
      let count = 0;
      for (let i = 0; i < HASH_TABLE_SIZE; i++) {
        const d = dests[p];
        table[i] = d;
        if (++count >= d.weight) {
          p = (p + 1) % dests.length;
          count = 0;
        }
      }
    },
    pick(context: PickContext = {}) {
      const address = context.client?.address ?? "0.0.0.0";
      const port = usePort ? context.client?.port ?? 0 : 0;
      const first = shSlot(address, port);
      const d = table[first];
      if (!d) return undefined;
      if (!unavailable(d)) return d;
      if (!fallback) return undefined;
      for (let offset = 0; offset < HASH_TABLE_SIZE; offset++) {
        const roffset = (offset + first) % HASH_TABLE_SIZE;
        const alt = table[shSlot(address, port, roffset)];
        if (!alt) break;
        if (!unavailable(alt)) return alt;
      }
      return undefined;
    },
  };
}

// ------------------------------------------------------------------ SipHash-1-3

const MASK64 = (1n << 64n) - 1n;

function rotl(x: bigint, b: bigint): bigint {
  return ((x << b) | (x >> (64n - b))) & MASK64;
}

/**
 * The kernel's `hsiphash` on 64-bit machines (SipHash-1-3, result truncated to 32
 * bits) over `bytes` with the two 64-bit key words.
 */
export function hsiphash(bytes: Uint8Array, k0: bigint, k1: bigint): number {
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = () => {
    v0 = (v0 + v1) & MASK64;
    v1 = rotl(v1, 13n);
    v1 ^= v0;
    v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & MASK64;
    v3 = rotl(v3, 16n);
    v3 ^= v2;
    v0 = (v0 + v3) & MASK64;
    v3 = rotl(v3, 21n);
    v3 ^= v0;
    v2 = (v2 + v1) & MASK64;
    v1 = rotl(v1, 17n);
    v1 ^= v2;
    v2 = rotl(v2, 32n);
  };
  const full = bytes.length - (bytes.length % 8);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < full; i += 8) {
    const m = view.getBigUint64(i, true);
    v3 ^= m;
    round();
    v0 ^= m;
  }
  let b = BigInt(bytes.length) << 56n;
  for (let i = full; i < bytes.length; i++) b |= BigInt(bytes[i]) << BigInt(8 * (i - full));
  v3 ^= b;
  round();
  v0 ^= b;
  v2 ^= 0xffn;
  round();
  round();
  round();
  return Number((v0 ^ v1 ^ v2 ^ v3) & 0xffffffffn);
}

// SipHash state as 32-bit halves: [v0h, v0l, v1h, v1l, v2h, v2l, v3h, v3l].
const sip = new Uint32Array(8);

function add(a: number, b: number): void {
  const lo = sip[a + 1] + sip[b + 1];
  sip[a] = sip[a] + sip[b] + (lo > 0xffffffff ? 1 : 0);
  sip[a + 1] = lo;
}

/** x = rotl(x, bits) ^ y, for 0 < bits < 32. */
function rotlXor(x: number, bits: number, y: number): void {
  const h = sip[x];
  const l = sip[x + 1];
  sip[x] = ((h << bits) | (l >>> (32 - bits))) ^ sip[y];
  sip[x + 1] = ((l << bits) | (h >>> (32 - bits))) ^ sip[y + 1];
}

function swap(x: number): void {
  const h = sip[x];
  sip[x] = sip[x + 1];
  sip[x + 1] = h;
}

function sipRound(): void {
  add(0, 2);
  rotlXor(2, 13, 0);
  swap(0);
  add(4, 6);
  rotlXor(6, 16, 4);
  add(0, 6);
  rotlXor(6, 21, 0);
  add(4, 2);
  rotlXor(2, 17, 4);
  swap(4);
}

/**
 * {@link hsiphash} of one 32-bit value (its 4 little-endian bytes) with the key words
 * split in 32-bit halves: the hot path of mh, without BigInt.
 */
export function hsiphashU32(
  value: number,
  k0hi: number,
  k0lo: number,
  k1hi: number,
  k1lo: number,
): number {
  sip[0] = 0x736f6d65 ^ k0hi;
  sip[1] = 0x70736575 ^ k0lo;
  sip[2] = 0x646f7261 ^ k1hi;
  sip[3] = 0x6e646f6d ^ k1lo;
  sip[4] = 0x6c796765 ^ k0hi;
  sip[5] = 0x6e657261 ^ k0lo;
  sip[6] = 0x74656462 ^ k1hi;
  sip[7] = 0x79746573 ^ k1lo;
  // The final block: the 4 bytes of value, the length 4 in the top byte.
  const bh = 4 << 24;
  sip[6] ^= bh;
  sip[7] ^= value;
  sipRound();
  sip[0] ^= bh;
  sip[1] ^= value;
  sip[5] ^= 0xff;
  sipRound();
  sipRound();
  sipRound();
  return (sip[1] ^ sip[3] ^ sip[5] ^ sip[7]) >>> 0;
}

const MH_KEY1 = 2654435761n;
const MH_KEY2 = 2654446892n;

function mhHash(address: string, port: number, key: bigint, offset: number): number {
  const k = Number(key);
  return hsiphashU32((offset + port + foldAddress(address)) >>> 0, 0, k, 0, k);
}

function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

/**
 * Maglev hashing: each destination gets a preference order of the 4093 slots (offset
 * and skip from SipHash of its address and port) and takes slots in turn, as many per
 * round as its weight/gcd (scaled down to 6 bits); the client address (and port with
 * `mh-port`) picks the slot. Weights are the last non-zero ones, so quiescing a
 * destination keeps the table; with `mh-fallback`, an unusable destination there is
 * replaced by probing.
 */
export function createMaglev(options: SchedulerOptions = {}): Scheduler {
  const fallback = options.flags?.includes("mh-fallback") ?? false;
  const usePort = options.flags?.includes("mh-port") ?? false;
  let table: (SchedDest | undefined)[] = new Array(MH_TABLE_SIZE);
  const lastWeight = new Map<string, number>();
  const slotOf = (address: string, port: number, offset: number) =>
    mhHash(address, port, MH_KEY1, offset) % MH_TABLE_SIZE;
  return {
    name: "mh",
    ...NO_CACHE,
    update(dests) {
      const keys = new Set(dests.map((d) => d.key));
      for (const key of [...lastWeight.keys()]) if (!keys.has(key)) lastWeight.delete(key);
      for (const d of dests) {
        if (!lastWeight.has(d.key) || d.weight !== 0) lastWeight.set(d.key, d.weight);
      }
      table = maglevTable(dests, dests.map((d) => lastWeight.get(d.key) ?? 0));
    },
    pick(context: PickContext = {}) {
      const address = context.client?.address ?? "0.0.0.0";
      const port = usePort ? context.client?.port ?? 0 : 0;
      const first = slotOf(address, port, 0);
      const d = table[first];
      if (!d) return undefined;
      if (!unavailable(d)) return d;
      if (!fallback) return undefined;
      for (let offset = 0; offset < MH_TABLE_SIZE; offset++) {
        const alt = table[slotOf(address, port, (offset + first) % MH_TABLE_SIZE)];
        if (!alt) break;
        if (!unavailable(alt)) return alt;
      }
      return undefined;
    },
  };
}

/**
 * The Maglev lookup table of `dests` (list order) with their `weights` (the kernel's
 * last non-zero weights): 4093 slots, each naming a destination, or all empty when no
 * weight is positive.
 */
export function maglevTable(
  dests: readonly SchedDest[],
  weights: readonly number[],
): (SchedDest | undefined)[] {
  const table: (SchedDest | undefined)[] = new Array(MH_TABLE_SIZE);
  let g = 0;
  let max = 0;
  for (const w of weights) {
    if (w > 0) g = g > 0 ? gcdOf(w, g) : w;
    if (w > max) max = w;
  }
  if (g < 1) return table;
  const shift = Math.max(0, fls(Math.trunc(max / g)) - MH_TAB_BITS);
  const setup = dests.map((d, i) => {
    const offset = mhHash(d.host, d.port, MH_KEY1, 0) % MH_TABLE_SIZE;
    const skip = (mhHash(d.host, d.port, MH_KEY2, 0) % (MH_TABLE_SIZE - 1)) + 1;
    const w = weights[i];
    const turns = (Math.trunc(w / g) >> shift) || (w !== 0 ? 1 : 0);
    return { offset, skip, perm: offset, turns };
  });
  const taken = new Uint8Array(MH_TABLE_SIZE);
  let n = 0;
  let turn = 0;
  while (n < MH_TABLE_SIZE) {
    for (let i = 0; i < dests.length;) {
      const s = setup[i];
      if (s.turns < 1) {
        i++;
        continue;
      }
      let c = s.perm;
      while (taken[c]) {
        s.perm += s.skip;
        if (s.perm >= MH_TABLE_SIZE) s.perm -= MH_TABLE_SIZE;
        c = s.perm;
      }
      taken[c] = 1;
      table[c] = dests[i];
      if (++n === MH_TABLE_SIZE) return table;
      if (++turn >= s.turns) {
        turn = 0;
        i++;
      }
    }
  }
  return table;
}

function gcdOf(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
