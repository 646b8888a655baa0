/**
 * A pool as the switch sees it: its servers with live in-flight counts and effective
 * weights, the bounded-load hash ring over the usable ones, a sketch of which keys are
 * hot (those move first when a server runs over its bound), and the L4 schedulers for
 * rules that balance with `scheduler:`. Pure: the caller feeds weights and counts.
 * @module
 */
import type { PoolModel } from "../config/model.ts";
import type { SchedulerName } from "../config/schema.ts";
import { createScheduler, Dest, kernelOrder, type Scheduler } from "../l4/sched/mod.ts";
import { hash32 } from "./hash.ts";
import { buildRing, pickBounded, type Ring } from "./ring.ts";

/**
 * Picks per usable server after which every server's recent count is halved: the
 * window of the rate the load bound balances (256 × 4 servers = the last ~1,000
 * requests carry half the weight).
 */
export const RECENT_HALVING = 256;

/**
 * A key whose recent share of the pool's requests is at least 1 in this many is hot.
 * Hot keys are the ones to move when a server runs over: the next server soon holds
 * them in its cache too, while a moved cold key misses there (bench/l7_cache.ts).
 */
export const HOT_SHARE = 256;

/**
 * Hot keys leave their home at this fraction of the load bound, so a server holding
 * a popular key sheds it before it has to shed cold keys at the bound itself.
 */
export const HOT_BOUND = 0.9;

/** Counters of the hot-key sketch per pool (16 KiB), indexed by the key's hash. */
export const KEY_SLOTS = 4096;

/**
 * Key counts are halved every this many × {@link RECENT_HALVING} × servers requests:
 * a longer window than the rate's, so a key's share is counted over enough requests.
 */
export const KEY_HALVING = 16;

/**
 * The in-flight bound is this many times the load bound: a safety net for a slow
 * server, loose enough not to fire on the noise of small in-flight counts.
 */
export const INFLIGHT_FACTOR = 2;

/** One server of a pool at run time. */
export interface ServerRuntime {
  /** Endpoint text as in the Model (`127.0.0.1:8101`). */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly backup: boolean;
  /** In-flight cap (`max_conns`); 0 = none. A full server takes no new request. */
  readonly maxConns: number;
  /** Weight traffic uses now (0 = no new requests). */
  weight: number;
  /** Requests sent to it and not yet finished. */
  inflight: number;
  /** Requests sent to it recently (a count halved every {@link RECENT_HALVING} × servers). */
  recent: number;
  /** The scheduler's view of it (activeConns mirrors inflight). */
  readonly dest: Dest;
}

/** Where a request goes and why. */
export interface PoolPick {
  readonly server: ServerRuntime;
  /** The key's hash, when the rule hashes. */
  readonly hash?: number;
  /** Ring position of the point that chose the server. */
  readonly position?: number;
  /** The server the key hashes to before the load bound. */
  readonly home?: ServerRuntime;
  /** True when the load bound moved the request off its home server. */
  readonly diverted: boolean;
}

/** Options of {@link PoolRuntime.pick}. */
export interface PoolPickOptions {
  /** The key to hash (hash balancing); absent for scheduler balancing. */
  readonly key?: string;
  /** Scheduler name when not hashing. */
  readonly scheduler?: string;
  /** Load bound factor c. */
  readonly loadBound?: number;
  /** Servers already tried for this request. */
  readonly exclude?: ReadonlySet<ServerRuntime>;
  /** Client address (sh/mh schedulers). */
  readonly client?: string;
}

/** A pool's servers, ring and schedulers. */
export class PoolRuntime {
  readonly name: string;
  readonly servers: readonly ServerRuntime[];
  #ring: Ring = buildRing([]);
  #ringServers: ServerRuntime[] = [];
  #schedulers = new Map<string, Scheduler>();
  #total = 0;
  #recentTotal = 0;
  #keyCounts = new Uint32Array(KEY_SLOTS);
  #keyTotal = 0;
  #keyCounted = 0;

  /** A pool from its Model; `weightOf` gives the current effective weight per address. */
  constructor(pool: PoolModel, weightOf: (address: string) => number | undefined) {
    this.name = pool.name;
    this.servers = pool.servers.map((s) => ({
      address: s.address.text,
      host: s.address.host,
      port: s.address.port,
      backup: s.backup,
      maxConns: s.max_conns,
      weight: weightOf(s.address.text) ?? s.weight,
      inflight: 0,
      recent: 0,
      dest: new Dest(s.address.host, s.address.port, 0),
    }));
    this.refresh();
  }

  /** The ring now in use (usable primaries, or usable backups when no primary is). */
  get ring(): Ring {
    return this.#ring;
  }

  /** Requests in flight over the whole pool. */
  get inflight(): number {
    return this.#total;
  }

  /** Servers taking new requests now. */
  get usable(): readonly ServerRuntime[] {
    return this.#ringServers;
  }

  /** Sets a server's effective weight; returns true when the ring changed. */
  setWeight(address: string, weight: number): boolean {
    const server = this.servers.find((s) => s.address === address);
    if (!server || server.weight === weight) return false;
    server.weight = weight;
    this.refresh();
    return true;
  }

  /** Rebuilds the ring and scheduler lists from the servers' weights. */
  refresh(): void {
    const primaries = this.servers.filter((s) => !s.backup && s.weight > 0);
    const chosen = primaries.length
      ? primaries
      : this.servers.filter((s) => s.backup && s.weight > 0);
    this.#ringServers = chosen;
    this.#ring = buildRing(chosen.map((s) => ({ id: s.address, weight: s.weight })));
    for (const s of this.servers) s.dest.weight = chosen.includes(s) ? s.weight : 0;
    const dests = kernelOrder(this.servers.map((s) => s.dest));
    for (const sched of this.#schedulers.values()) sched.update(dests);
  }

  /**
   * Counts a request as started on `server`; `hash` (the pick's) also counts its key
   * towards the hot-key sketch, so pass it for hashed requests.
   */
  acquire(server: ServerRuntime, hash?: number): void {
    if (hash !== undefined) this.#countKey(hash);
    server.recent++;
    if (++this.#recentTotal >= RECENT_HALVING * Math.max(1, this.#ringServers.length)) {
      for (const s of this.servers) s.recent /= 2;
      this.#recentTotal /= 2;
    }
    server.inflight++;
    server.dest.activeConns = server.inflight;
    server.dest.overloaded = server.maxConns > 0 && server.inflight >= server.maxConns;
    this.#total++;
  }

  #countKey(hash: number): void {
    this.#keyCounts[hash % KEY_SLOTS]++;
    this.#keyTotal++;
    if (
      ++this.#keyCounted >= KEY_HALVING * RECENT_HALVING * Math.max(1, this.#ringServers.length)
    ) {
      this.#keyCounted = 0;
      let total = 0;
      for (let i = 0; i < KEY_SLOTS; i++) total += this.#keyCounts[i] >>>= 1;
      this.#keyTotal = total;
    }
  }

  /** True when the key of `hash` is at least 1 in {@link HOT_SHARE} of recent requests. */
  #hot(hash: number): boolean {
    const count = this.#keyCounts[hash % KEY_SLOTS];
    return count > 0 && count * HOT_SHARE >= this.#keyTotal;
  }

  /** Counts a request as finished on `server`. */
  release(server: ServerRuntime): void {
    server.inflight--;
    server.dest.activeConns = server.inflight;
    server.dest.overloaded = server.maxConns > 0 && server.inflight >= server.maxConns;
    this.#total--;
  }

  /** Chooses a server for a request, or undefined when none is usable. */
  pick(options: PoolPickOptions): PoolPick | undefined {
    const exclude = options.exclude;
    const blocked = (s: ServerRuntime) =>
      (s.maxConns > 0 && s.inflight >= s.maxConns) || (exclude !== undefined && exclude.has(s));
    if (options.key !== undefined || !options.scheduler) {
      const hash = hash32(options.key ?? "");
      const servers = this.#ringServers;
      const bound = options.loadBound ?? 1.25;
      // Balance: bounded by the recent request rate, so noise in small in-flight
      // counts does not scatter keys (bench/l7_cache.ts measures the difference).
      // A server with nothing in flight is never over its bound: at low load the
      // same key always goes to the same server.
      const ring = this.#ring;
      const rate = (i: number) =>
        blocked(servers[i]) ? Infinity : servers[i].inflight ? servers[i].recent : 0;
      // A hot key walks on at HOT_BOUND × bound; if no server is under that, it is
      // placed like any key at the bound itself.
      const hot = bound !== Infinity && this.#hot(hash);
      const soft = hot ? HOT_BOUND * bound : bound;
      let pick = pickBounded(ring, hash, { load: rate, totalLoad: this.#recentTotal, bound: soft });
      if (!pick) return undefined;
      if (hot && !pick.diverted) {
        const cap = Math.ceil(
          (soft * (this.#recentTotal + 1) * ring.members[pick.home].weight) / ring.totalWeight,
        );
        if (rate(pick.home) + 1 > cap) {
          pick = pickBounded(ring, hash, { load: rate, totalLoad: this.#recentTotal, bound }) ??
            pick;
        }
      }
      const home = pick.home;
      // Safety: a server with too many requests in flight (slow or stuck) is passed.
      const chosen = servers[pick.member];
      const cap = Math.ceil(
        (INFLIGHT_FACTOR * bound * (this.#total + 1) * chosen.weight) / ring.totalWeight,
      );
      if (chosen.inflight + 1 > cap) {
        pick = pickBounded(ring, hash, {
          load: (i) => (blocked(servers[i]) ? Infinity : servers[i].inflight),
          totalLoad: this.#total,
          bound: INFLIGHT_FACTOR * bound,
        }) ?? pick;
      }
      const server = servers[pick.member];
      if (blocked(server)) return undefined;
      return {
        server,
        hash,
        position: pick.position,
        home: servers[home],
        diverted: pick.member !== home,
      };
    }
    const sched = this.#scheduler(options.scheduler);
    const dest = sched.pick(options.client ? { client: { address: options.client } } : {});
    let server = this.servers.find((s) => s.dest === dest);
    if (!server || blocked(server)) server = this.#ringServers.find((s) => !blocked(s));
    return server ? { server, diverted: false } : undefined;
  }

  #scheduler(name: string): Scheduler {
    let sched = this.#schedulers.get(name);
    if (!sched) {
      sched = createScheduler(name as SchedulerName);
      sched.update(kernelOrder(this.servers.map((s) => s.dest)));
      this.#schedulers.set(name, sched);
    }
    return sched;
  }
}
