/**
 * Cache locality of the L7 switch, simulated in-process with the switch's own pool
 * code: 4 LRU-cached servers each holding 10 % of 100,000 URLs, a Zipf (s = 1.0)
 * stream of 1,000,000 requests, 64 requests in flight (a request completes when the
 * 64th after it arrives, so the in-flight safety bound sees a live count). Compares
 * Fulcrum's bounded-load uri hash with round-robin and KTCPVS's byte-sum hash, and
 * the ideal (one LRU of 4× the size). Then adds a fifth server after 500,000 requests
 * and counts the extra misses in the next 100,000 against a run without the change.
 * Both hashes meet the new server the same way: its cache is empty. Fulcrum's pool is
 * rebuilt as the switch does on a config change (l7/mod.ts: a new PoolRuntime with
 * fresh counts; requests in flight finish on the old one).
 *
 * Each request stream is one seed; `--seeds 1,7,42` (or `--seed N`) picks them, by
 * default 1, 7, 42, 100 and 2024, and a last table shows every goal per seed.
 *
 * A second part measures the choice of ring vs Maglev: key balance and movement on
 * adding a server, for the ring at 100 and 1,000 points per server and the l4 `mh`
 * scheduler's 4093-slot Maglev table.
 *
 * Run: `npx -y deno@2.9.6 run -A bench/l7_cache.ts [--seeds 1,7,42]`; ~12 s a seed.
 * Not part of the test suite.
 * @module
 */
import { parseEndpoint } from "../config/address.ts";
import type { Endpoint } from "../config/address.ts";
import type { PoolModel } from "../config/model.ts";
import { createScheduler, Dest, kernelOrder } from "../l4/sched/mod.ts";
import { byteSum, hash32 } from "../l7/hash.ts";
import { PoolRuntime, type ServerRuntime } from "../l7/pool.ts";
import { buildRing, pickBounded } from "../l7/ring.ts";
import { normalizeUri } from "../l7/rules.ts";

const URLS = 100_000;
const REQUESTS = 1_000_000;
const SERVERS = 4;
const CACHE = URLS / 10;
const INFLIGHT = 64;
const CHANGE_AT = 500_000;
const WINDOW = 100_000;
/** PRNG seeds of the request streams (`--seeds 1,7` or `--seed N`). */
const SEEDS = seedsOf(Deno.args);

function seedsOf(args: readonly string[]): number[] {
  const at = args.findIndex((a) => a === "--seeds" || a === "--seed");
  if (at < 0) return [1, 7, 42, 100, 2024];
  const seeds = (args[at + 1] ?? "").split(",").map(Number);
  if (!seeds.length || seeds.some((s) => !Number.isInteger(s))) {
    throw new Error(`${args[at]} takes integers separated by commas, like --seeds 1,7,42`);
  }
  return seeds;
}

/** A seeded xorshift PRNG in [0, 1). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/** The request stream: URL indices drawn from Zipf(s = 1) over URLS ranks. */
function zipfStream(seed: number): { urls: string[]; stream: Uint32Array } {
  const random = rng(seed);
  const cdf = new Float64Array(URLS);
  let sum = 0;
  for (let k = 0; k < URLS; k++) cdf[k] = sum += 1 / (k + 1);
  for (let k = 0; k < URLS; k++) cdf[k] /= sum;
  // rank → URL through a random permutation, so popularity says nothing about the text
  const perm = Array.from({ length: URLS }, (_, i) => i);
  for (let i = URLS - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  const urls = perm.map((n) => `/site/section${n % 97}/page-${n}.html`);
  const stream = new Uint32Array(REQUESTS);
  for (let i = 0; i < REQUESTS; i++) {
    const u = random();
    let lo = 0;
    let hi = URLS - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    stream[i] = lo;
  }
  return { urls, stream };
}

/** An LRU of `size` entries over a Map's insertion order. */
class Lru {
  #map = new Map<number, true>();
  readonly size: number;
  constructor(size: number) {
    this.size = size;
  }
  /** Looks `key` up; inserts it on a miss. Returns true on a hit. */
  touch(key: number): boolean {
    if (this.#map.delete(key)) {
      this.#map.set(key, true);
      return true;
    }
    this.#map.set(key, true);
    if (this.#map.size > this.size) this.#map.delete(this.#map.keys().next().value!);
    return false;
  }
}

interface Router {
  /** Picks a server index for a URL; `done` is called when the request completes. */
  route(url: string, key: number): { server: number; done: () => void };
  /** Adds a server (index = previous count). */
  add(): void;
}

function poolModel(n: number): PoolModel {
  return {
    name: "cache",
    slowstart: 0,
    check: {} as PoolModel["check"],
    servers: Array.from({ length: n }, (_, i) => ({
      address: parseEndpoint(`10.0.0.${i + 1}:80`) as Endpoint,
      weight: 1,
      backup: false,
      max_conns: 0,
      upper_threshold: 0,
      lower_threshold: 0,
    })),
  };
}

function fulcrumRouter(n: number, loadBound: number): Router {
  let pool = new PoolRuntime(poolModel(n), () => undefined);
  let index = new Map<ServerRuntime, number>(pool.servers.map((s, i) => [s, i]));
  return {
    route(url) {
      const current = pool;
      const pick = current.pick({ key: normalizeUri(url, ""), loadBound })!;
      current.acquire(pick.server, pick.hash);
      return { server: index.get(pick.server)!, done: () => current.release(pick.server) };
    },
    add() {
      // as l7/mod.ts on a changed pool: a new runtime; requests in flight finish on the old
      pool = new PoolRuntime(poolModel(pool.servers.length + 1), () => undefined);
      index = new Map(pool.servers.map((s, i) => [s, i]));
    },
  };
}

function roundRobinRouter(n: number): Router {
  let count = n;
  let next = 0;
  return {
    route() {
      next = (next + 1) % count;
      return { server: next, done: () => {} };
    },
    add() {
      count++;
    },
  };
}

function byteSumRouter(n: number): Router {
  let count = n;
  return {
    route(url) {
      return { server: byteSum(url) % count, done: () => {} };
    },
    add() {
      count++;
    },
  };
}

interface RunResult {
  readonly misses: number;
  readonly load: number[];
  readonly windowMisses: number;
}

function run(
  urls: string[],
  stream: Uint32Array,
  router: Router,
  options: { servers: number; addAt?: number },
): RunResult {
  const caches = Array.from({ length: options.servers + 1 }, () => new Lru(CACHE));
  const load = new Array(options.servers + 1).fill(0);
  const pending: (() => void)[] = [];
  let misses = 0;
  let windowMisses = 0;
  for (let i = 0; i < stream.length; i++) {
    if (i === options.addAt) router.add();
    const key = stream[i];
    const { server, done } = router.route(urls[key], key);
    load[server]++;
    const hit = caches[server].touch(key);
    if (!hit) {
      misses++;
      if (i >= CHANGE_AT && i < CHANGE_AT + WINDOW) windowMisses++;
    }
    pending.push(done);
    if (pending.length > INFLIGHT) pending.shift()!();
  }
  return {
    misses,
    load: load.slice(0, options.addAt === undefined ? options.servers : options.servers + 1),
    windowMisses,
  };
}

function maxOverMean(load: number[]): number {
  const used = load.filter((x) => x > 0);
  const mean = used.reduce((a, b) => a + b, 0) / used.length;
  return Math.max(...used) / mean;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

/** One seed's ratios against the goals of the issue. */
interface SeedResult {
  readonly seed: number;
  /** Fulcrum's misses / round-robin's (goal ≤ 0.5). */
  readonly vsRoundRobin: number;
  /** Fulcrum's misses / the ideal's (goal ≤ 1.02). */
  readonly vsIdeal: number;
  /** Fulcrum's max/mean server load (goal ≤ 1.25). */
  readonly maxMean: number;
  /** Extra misses after adding a server, Fulcrum / byte-sum (goal ≤ 0.3). */
  readonly vsByteSum: number;
}

const FULCRUM = "fulcrum uri hash (bound 1.25)";
const ROUND_ROBIN = "round-robin";
const BYTE_SUM = "KTCPVS byte-sum hash";

function cacheLocality(seed: number): SeedResult {
  const { urls, stream } = zipfStream(seed);
  const ideal = new Lru(CACHE * SERVERS);
  let idealMisses = 0;
  for (let i = 0; i < stream.length; i++) if (!ideal.touch(stream[i])) idealMisses++;
  const routers: [string, () => Router][] = [
    [FULCRUM, () => fulcrumRouter(SERVERS, 1.25)],
    [ROUND_ROBIN, () => roundRobinRouter(SERVERS)],
    [BYTE_SUM, () => byteSumRouter(SERVERS)],
  ];
  console.log(
    `\nSeed ${seed}. Cache locality: ${SERVERS} servers × LRU ${CACHE} (10% of ${URLS} URLs each), ` +
      `Zipf s=1.0, ${REQUESTS} requests, ${INFLIGHT} in flight`,
  );
  console.log(`ideal (one LRU of ${CACHE * SERVERS}): miss rate ${pct(idealMisses / REQUESTS)}`);
  console.log(
    "strategy                        hit rate  miss rate  misses/ideal  misses/rr  max/mean load",
  );
  const results = new Map<string, RunResult>();
  for (const [name, make] of routers) {
    results.set(name, run(urls, stream, make(), { servers: SERVERS }));
  }
  const rr = results.get(ROUND_ROBIN)!;
  for (const [name, r] of results) {
    console.log(
      `${name.padEnd(31)} ${pct(1 - r.misses / REQUESTS).padStart(8)} ${
        pct(r.misses / REQUESTS).padStart(10)
      } ` +
        `${(r.misses / idealMisses).toFixed(3).padStart(13)} ${
          (r.misses / rr.misses).toFixed(3).padStart(10)
        } ` +
        `${maxOverMean(r.load).toFixed(3).padStart(14)}`,
    );
  }
  const f = results.get(FULCRUM)!;
  console.log(
    `fulcrum: misses ${(f.misses / rr.misses).toFixed(3)}× round-robin (goal ≤ 0.5), ` +
      `${(f.misses / idealMisses).toFixed(4)}× the ideal's (miss rate ${
        pct(f.misses / REQUESTS)
      } ` +
      `vs ${pct(idealMisses / REQUESTS)}; goal ≤ 1.02×), max/mean ${
        maxOverMean(f.load).toFixed(3)
      } (goal ≤ 1.25)`,
  );

  console.log(`Adding a 5th server after ${CHANGE_AT} requests: misses in the next ${WINDOW}`);
  console.log("strategy                        with change  without  extra misses");
  const extra = new Map<string, number>();
  for (const [name, make] of [routers[0], routers[2]] as const) {
    // the run without the change is the one above: every router is deterministic
    const changed = run(urls, stream, make(), { servers: SERVERS, addAt: CHANGE_AT });
    const control = results.get(name)!;
    const e = changed.windowMisses - control.windowMisses;
    extra.set(name, e);
    console.log(
      `${name.padEnd(31)} ${String(changed.windowMisses).padStart(11)} ${
        String(control.windowMisses).padStart(8)
      } ` +
        `${String(e).padStart(13)}`,
    );
  }
  const ratio = extra.get(FULCRUM)! / extra.get(BYTE_SUM)!;
  console.log(`extra misses fulcrum / byte-sum: ${ratio.toFixed(3)} (goal ≤ 0.3)`);
  return {
    seed,
    vsRoundRobin: f.misses / rr.misses,
    vsIdeal: f.misses / idealMisses,
    maxMean: maxOverMean(f.load),
    vsByteSum: ratio,
  };
}

function summary(results: readonly SeedResult[]): void {
  console.log("\nGoals per seed (fulcrum uri hash, bound 1.25)");
  console.log("seed   misses/rr ≤ 0.5  misses/ideal ≤ 1.02  max/mean ≤ 1.25  add: /byte-sum ≤ 0.3");
  const mark = (x: number, goal: number, digits: number) =>
    `${x.toFixed(digits)} ${x <= goal ? "ok  " : "FAIL"}`;
  for (const r of results) {
    console.log(
      `${String(r.seed).padEnd(6)} ${mark(r.vsRoundRobin, 0.5, 3).padStart(15)} ${
        mark(r.vsIdeal, 1.02, 4).padStart(19)
      } ${mark(r.maxMean, 1.25, 3).padStart(15)} ${mark(r.vsByteSum, 0.3, 3).padStart(20)}`,
    );
  }
  const worst = (f: (r: SeedResult) => number) => Math.max(...results.map(f));
  console.log(
    `worst  ${worst((r) => r.vsRoundRobin).toFixed(3).padStart(10)} ${
      worst((r) => r.vsIdeal).toFixed(4).padStart(14)
    } ${worst((r) => r.maxMean).toFixed(3).padStart(15)} ${
      worst((r) => r.vsByteSum).toFixed(3).padStart(15)
    }`,
  );
}

function ringVsMaglev(): void {
  const keys = Array.from({ length: 200_000 }, (_, i) => `/site/page-${i}.html`);
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `10.0.0.${i + 1}:80`);
  const ownersRing = (n: number, points: number) => {
    const ring = buildRing(ids(n).map((id) => ({ id, weight: 1 })), { pointsPerMember: points });
    return keys.map((k) => pickBounded(ring, hash32(k))!.member);
  };
  const ownersMaglev = (n: number) => {
    const dests = ids(n).map((id) => new Dest(id.split(":")[0], 80, 1));
    const sched = createScheduler("mh");
    sched.update(kernelOrder(dests));
    return keys.map((k) => dests.indexOf(sched.pick({ client: { address: k } }) as Dest));
  };
  console.log("\nRing vs Maglev, 200,000 keys, 4 → 5 equal servers");
  console.log(
    "table                         build+200k lookups ms  per key ns  max/mean keys (4)  moved on add  ideal",
  );
  const variants: [string, (n: number) => number[]][] = [
    ["ring, 100 points/server", (n) => ownersRing(n, 100)],
    ["ring, 1000 points/server", (n) => ownersRing(n, 1000)],
    ["maglev (l4 mh, 4093 slots)", (n) => ownersMaglev(n)],
  ];
  for (const [name, owners] of variants) {
    const t0 = performance.now();
    const before = owners(4);
    const t1 = performance.now();
    const after = owners(5);
    const counts = new Array(4).fill(0);
    for (const o of before) counts[o]++;
    let moved = 0;
    for (let i = 0; i < keys.length; i++) if (before[i] !== after[i]) moved++;
    console.log(
      `${name.padEnd(29)} ${(t1 - t0).toFixed(0).padStart(21)} ${
        ((t1 - t0) * 1e6 / keys.length).toFixed(0).padStart(11)
      } ` +
        `${maxOverMean(counts).toFixed(3).padStart(18)} ${pct(moved / keys.length).padStart(13)} ${
          pct(1 / 5).padStart(6)
        }`,
    );
  }
}

if (import.meta.main) {
  summary(SEEDS.map(cacheLocality));
  ringVsMaglev();
}
