/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2018) on a
 * weighted hash ring.
 *
 * Each member owns points on a 32-bit circle, as many as its share of the total
 * weight times {@link POINTS_PER_MEMBER} × members, so equal weights always get
 * the same number of points and a member's point positions never depend on the
 * others: adding or removing one of N members moves only the keys it owns, ~1/N.
 * A key goes to the first point clockwise of its hash; when that member's load would
 * exceed `bound` × its weighted share of the total load, the key walks on to the next
 * distinct member (the paper's forwarding rule). The caller says what load is: pool.ts
 * uses the recent request rate for balance and in-flight requests as a safety net. The ring was chosen over
 * a Maglev table because the bounded-load walk needs a clockwise order of distinct
 * members per key, which the ring gives for free, and because its movement on
 * change is the minimum (Maglev's permutation tables move a few percent extra).
 * @module
 */
import { hash32 } from "./hash.ts";

/** Points per member at equal weights: ±10 % balance at 3 σ needs ~1,000. */
export const POINTS_PER_MEMBER = 1000;

/** One member of a ring: a stable id (the server address) and its weight (> 0). */
export interface RingMember {
  readonly id: string;
  readonly weight: number;
}

/** Options of {@link buildRing}. */
export interface RingOptions {
  /** Points per member at equal weights (default {@link POINTS_PER_MEMBER}). */
  readonly pointsPerMember?: number;
}

/** An immutable ring: sorted point positions and the member owning each. */
export interface Ring {
  readonly members: readonly RingMember[];
  readonly positions: Uint32Array;
  readonly owners: Uint16Array;
  readonly totalWeight: number;
}

/** Builds a ring of the members with weight > 0; members keep their input order. */
export function buildRing(members: readonly RingMember[], options: RingOptions = {}): Ring {
  const live = members.filter((m) => m.weight > 0);
  if (live.length > 65535) throw new Error("a ring holds at most 65535 servers; split the pool");
  const per = options.pointsPerMember ?? POINTS_PER_MEMBER;
  const totalWeight = live.reduce((sum, m) => sum + m.weight, 0);
  const counts = live.map((m) =>
    Math.max(1, Math.round((per * live.length * m.weight) / totalWeight))
  );
  const total = counts.reduce((a, b) => a + b, 0);
  const pairs = new Float64Array(total);
  let n = 0;
  live.forEach((member, index) => {
    for (let k = 0; k < counts[index]; k++) {
      // position in the high 32 bits' worth of a double, owner in the low 16 bits
      pairs[n++] = hash32(`${member.id}#${k}`) * 65536 + index;
    }
  });
  pairs.sort();
  const positions = new Uint32Array(total);
  const owners = new Uint16Array(total);
  for (let i = 0; i < total; i++) {
    positions[i] = Math.floor(pairs[i] / 65536);
    owners[i] = pairs[i] % 65536;
  }
  return { members: live, positions, owners, totalWeight };
}

/** The index of the first point at or clockwise of `hash` (wrapping). */
export function pointAt(ring: Ring, hash: number): number {
  const positions = ring.positions;
  let lo = 0;
  let hi = positions.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (positions[mid] < hash) lo = mid + 1;
    else hi = mid;
  }
  return lo === positions.length ? 0 : lo;
}

/** Options of {@link pickBounded}. */
export interface PickOptions {
  /** In-flight load of member `index` (of `ring.members`); 0 when omitted. */
  readonly load?: (index: number) => number;
  /** Total in-flight load over all members; summed from `load` when omitted. */
  readonly totalLoad?: number;
  /** The load bound factor c ≥ 1; Infinity (default) disables the bound. */
  readonly bound?: number;
}

/** Where a key went and why. */
export interface Pick {
  /** Index into `ring.members` of the chosen member. */
  readonly member: number;
  /** Index into `ring.members` of the key's home (first member clockwise). */
  readonly home: number;
  /** Position on the ring of the point that chose the member. */
  readonly position: number;
  /** The key's own hash. */
  readonly hash: number;
  /** True when the home was over its bound and the key walked on. */
  readonly diverted: boolean;
}

/**
 * Picks the member for a key hash: the home member unless its load + 1 would exceed
 * ceil(bound × (total + 1) × weight / totalWeight), else the next distinct member
 * clockwise that fits. Returns undefined only for an empty ring.
 */
export function pickBounded(ring: Ring, hash: number, options: PickOptions = {}): Pick | undefined {
  const count = ring.positions.length;
  if (count === 0) return undefined;
  const start = pointAt(ring, hash);
  const home = ring.owners[start];
  const bound = options.bound ?? Infinity;
  const load = options.load;
  if (bound === Infinity || !load) {
    return { member: home, home, position: ring.positions[start], hash, diverted: false };
  }
  let total = options.totalLoad;
  if (total === undefined) {
    total = 0;
    for (let i = 0; i < ring.members.length; i++) total += load(i);
  }
  const members = ring.members.length;
  const homeCap = Math.ceil((bound * (total + 1) * ring.members[home].weight) / ring.totalWeight);
  if (load(home) + 1 <= homeCap) {
    return { member: home, home, position: ring.positions[start], hash, diverted: false };
  }
  const seen = new Uint8Array(members);
  let distinct = 0;
  for (let step = 0; step < count && distinct < members; step++) {
    const at = (start + step) % count;
    const owner = ring.owners[at];
    if (seen[owner]) continue;
    seen[owner] = 1;
    distinct++;
    const capacity = Math.ceil(
      (bound * (total + 1) * ring.members[owner].weight) / ring.totalWeight,
    );
    if (load(owner) + 1 <= capacity) {
      return { member: owner, home, position: ring.positions[at], hash, diverted: owner !== home };
    }
  }
  return { member: home, home, position: ring.positions[start], hash, diverted: false };
}
