/**
 * lblc and lblcr as the kernel runs them (ip_vs_lblc.c, ip_vs_lblcr.c): a cache from
 * the destination address a client asked for to the server (lblc) or server set
 * (lblcr) that served it, with wlc to fill or repair it, the kernel's "overloaded"
 * rule, and the periodic expiry of unused entries.
 * @module
 */
import {
  connOverhead,
  type PickContext,
  type SchedDest,
  type Scheduler,
  type SchedulerOptions,
} from "./types.ts";
import { pickWlc } from "./least.ts";

/** How often the shell should call `expire` (the kernel's CHECK_EXPIRE_INTERVAL). */
export const CHECK_EXPIRE_INTERVAL = 60_000;
/** Unused entries live this long by default (the `lblc_expiration` sysctl: 24 h). */
export const DEFAULT_EXPIRATION = 24 * 3600_000;
/** Under table pressure, entries unused this long go (ENTRY_TIMEOUT). */
export const ENTRY_TIMEOUT = 6 * 60_000;
/** Entries before pressure expiry starts (1024 buckets × 16). */
export const MAX_ENTRIES = 1024 * 16;
const COUNT_FOR_FULL_EXPIRATION = 30;

/**
 * The kernel's lblc/lblcr overload rule: `dest` has more active connections than its
 * weight while some destination of the service has fewer than half its weight.
 */
export function localityOverloaded(dest: SchedDest, list: readonly SchedDest[]): boolean {
  if (dest.activeConns <= dest.weight) return false;
  return list.some((d) => d.activeConns * 2 < d.weight);
}

interface Entry {
  lastuse: number;
}

/** The kernel's periodic cache expiry, shared by lblc and lblcr. */
class Expirer<E extends Entry> {
  counter = 1;
  constructor(readonly entries: Map<string, E>, readonly expiration: number) {}

  run(now: number): number {
    let removed = 0;
    if (this.counter % COUNT_FOR_FULL_EXPIRATION === 0) {
      for (const [key, en] of this.entries) {
        if (en.lastuse + this.expiration > now) continue;
        this.entries.delete(key);
        removed++;
      }
      this.counter = 1;
      return removed;
    }
    if (this.entries.size <= MAX_ENTRIES) {
      this.counter++;
      return 0;
    }
    let goal = Math.trunc((this.entries.size - MAX_ENTRIES) * 4 / 3);
    if (goal > MAX_ENTRIES / 2) goal = MAX_ENTRIES / 2;
    for (const [key, en] of this.entries) {
      if (now < en.lastuse + ENTRY_TIMEOUT) continue;
      this.entries.delete(key);
      removed++;
      if (--goal <= 0) break;
    }
    return removed;
  }
}

function destinationKey(context: PickContext): string {
  return context.destination?.address ?? "0.0.0.0";
}

/**
 * Locality-based least connection: a destination address keeps its server while that
 * server is in the service, has weight and is not overloaded by the kernel's rule;
 * otherwise wlc picks a new one and the cache remembers it.
 */
export function createLocality(options: SchedulerOptions = {}): Scheduler {
  let list: readonly SchedDest[] = [];
  let members = new Set<SchedDest>();
  const cache = new Map<string, Entry & { dest: SchedDest }>();
  const expirer = new Expirer(cache, options.expiration ?? DEFAULT_EXPIRATION);
  return {
    name: "lblc",
    update(dests) {
      list = [...dests];
      members = new Set(list);
    },
    pick(context: PickContext = {}) {
      const now = context.now ?? 0;
      const key = destinationKey(context);
      const en = cache.get(key);
      if (en) {
        en.lastuse = now;
        const d = en.dest;
        if (members.has(d) && d.weight > 0 && !localityOverloaded(d, list)) return d;
      }
      const dest = pickWlc(list);
      if (!dest) return undefined;
      if (en && en.dest === dest) return dest;
      cache.delete(key);
      cache.set(key, { dest, lastuse: now });
      return dest;
    },
    expire(now) {
      return expirer.run(now);
    },
    cacheSize() {
      return cache.size;
    },
  };
}

interface DestSet {
  /** Newest first, as the kernel's list_add. */
  dests: SchedDest[];
  lastmod: number;
}

/** The least loaded (overhead/weight) usable member of a set, first on ties. */
function setMin(set: DestSet, members: Set<SchedDest>): SchedDest | undefined {
  let least: SchedDest | undefined;
  let i = 0;
  for (; i < set.dests.length; i++) {
    const d = set.dests[i];
    if (d.overloaded) continue;
    if (d.weight > 0 && members.has(d)) {
      least = d;
      break;
    }
  }
  if (!least) return undefined;
  let loh = connOverhead(least);
  for (i++; i < set.dests.length; i++) {
    const d = set.dests[i];
    if (d.overloaded) continue;
    const doh = connOverhead(d);
    if (loh * d.weight > doh * least.weight && members.has(d)) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/** The most loaded member with weight, first on ties. */
function setMax(set: DestSet): SchedDest | undefined {
  let most: SchedDest | undefined;
  let i = 0;
  for (; i < set.dests.length; i++) {
    if (set.dests[i].weight > 0) {
      most = set.dests[i];
      break;
    }
  }
  if (!most) return undefined;
  let moh = connOverhead(most);
  for (i++; i < set.dests.length; i++) {
    const d = set.dests[i];
    const doh = connOverhead(d);
    if (moh * d.weight < doh * most.weight && d.weight > 0) {
      most = d;
      moh = doh;
    }
  }
  return most;
}

/**
 * Locality-based least connection with replication: a destination address maps to a
 * set of servers; the least loaded member serves it; when that member is overloaded
 * (or none is usable) wlc adds a server to the set; a set unchanged for the
 * expiration time sheds its most loaded member.
 */
export function createLocalityReplicated(options: SchedulerOptions = {}): Scheduler {
  let list: readonly SchedDest[] = [];
  let members = new Set<SchedDest>();
  const expiration = options.expiration ?? DEFAULT_EXPIRATION;
  const cache = new Map<string, Entry & { set: DestSet }>();
  const expirer = new Expirer(cache, expiration);
  const insert = (set: DestSet, dest: SchedDest, now: number) => {
    if (set.dests.includes(dest)) return;
    set.dests.unshift(dest);
    set.lastmod = now;
  };
  return {
    name: "lblcr",
    update(dests) {
      list = [...dests];
      members = new Set(list);
    },
    pick(context: PickContext = {}) {
      const now = context.now ?? 0;
      const key = destinationKey(context);
      const en = cache.get(key);
      if (en) {
        en.lastuse = now;
        const dest = setMin(en.set, members);
        if (en.set.dests.length > 1 && now > en.set.lastmod + expiration) {
          const m = setMax(en.set);
          if (m) {
            en.set.dests.splice(en.set.dests.indexOf(m), 1);
            en.set.lastmod = now;
          }
        }
        if (dest && !localityOverloaded(dest, list)) return dest;
        const fresh = pickWlc(list);
        if (!fresh) return undefined;
        insert(en.set, fresh, now);
        return fresh;
      }
      const dest = pickWlc(list);
      if (!dest) return undefined;
      cache.set(key, { lastuse: now, set: { dests: [dest], lastmod: now } });
      return dest;
    },
    expire(now) {
      return expirer.run(now);
    },
    cacheSize() {
      return cache.size;
    },
  };
}
