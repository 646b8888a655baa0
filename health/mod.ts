/**
 * The health subsystem: probes every real server of every pool, runs each verdict
 * through the rise/fall machine and writes the result into the shared
 * {@link ServerStates}, which l4, l7 and vrrp follow. Admin state (enabled, disabled,
 * drain) and weight overrides come from the admin API and survive reloads while the
 * server stays in the config.
 *
 * The shell owns timers, sockets and subprocesses; decisions are made by the pure
 * {@link observe}, {@link effectiveWeight} and {@link nextProbeAt}.
 * @module
 */
import type { Hono } from "hono";
import { mountPools, type PoolReport, type PoolsApi, type ServerReport } from "../admin/pools.ts";
import { family, Histogram, type Sample } from "../admin/prom.ts";
import type { ModelDiff } from "../config/diff.ts";
import type { Model, PoolModel, ResolvedCheck } from "../config/model.ts";
import { serverKey } from "../config/model.ts";
import type { ServerConfig } from "../config/schema.ts";
import type { AdminEnv, Subsystem, SubsystemDeps, SubsystemStatus } from "../subsystem.ts";
import {
  type CheckOutcome,
  effectiveWeight,
  type HealthState,
  initialHealth,
  nextRampAt,
  observe,
} from "./machine.ts";
import { createProber, type Prober } from "./probe.ts";
import { baseDelay, firstProbeAt, jittered, nextProbeAt, spreadPhase } from "./schedule.ts";
import type { AdminState } from "./state.ts";
import type { TcpBatchChecker, TcpDone } from "./tcp_batch.ts";
import type { Target } from "./tcp.ts";

export { createProber, probe, type Prober } from "./probe.ts";

/** Options of {@link createHealth}; tests and benchmarks inject these. */
export interface HealthOptions {
  /** Epoch milliseconds; `Date.now` by default. */
  readonly now?: () => number;
  /** Draws in [0, 1) for jitter; `Math.random` by default. */
  readonly random?: () => number;
  /** Runs one check; a {@link createProber} prober by default (batched TCP connects). */
  readonly prober?: Prober;
  /** Called when a probe starts, with when it was due (benchmarks count them). */
  readonly onProbe?: (pool: string, address: string, dueAt: number) => void;
}

/** The health subsystem plus what the admin routes call. */
export interface HealthSubsystem extends Subsystem, PoolsApi {
  /** Mounts `/api/v1/pools` and `/api/v1/servers/…`. */
  routes(app: Hono<AdminEnv>): void;
  /** `fulcrum_server_up`, `fulcrum_server_weight`, check durations, transitions. */
  metrics(): string;
}

/** Updated in place on every check (no allocation per check). */
interface LastResult {
  ok: boolean;
  reason: string;
  duration: number;
  at: number;
}

interface Entry {
  readonly pool: string;
  readonly address: string;
  server: ServerConfig;
  check: ResolvedCheck;
  slowstart: number;
  machine: HealthState;
  admin: AdminState;
  override?: number;
  dynamic?: number;
  /** Last change of health or admin state. */
  reason: string;
  since: number;
  last?: LastResult;
  /** When the next probe is due (same clock as `now`); undefined when none is armed. */
  dueAt?: number;
  /** The next probe's time without jitter: on the server's phase, see {@link nextProbeAt}. */
  anchor: number;
  rampTimer?: ReturnType<typeof setTimeout>;
  abort?: AbortController;
  /** Bumped when probing restarts or stops; a probe of an older generation is ignored. */
  gen: number;
  /** What was last written to the shared table, to skip writes that change nothing. */
  published?: string;
  /** Where TCP checks connect; cleared when the server or check changes. */
  target?: Target;
  /** The batched TCP probe this entry's reusable callback is serving, if any. */
  tcpBusy: boolean;
  tcpGen: number;
  tcpT0: number;
  tcpDone?: TcpDone;
}

/** Granularity of the probe timer wheel (ms), and the shortest gap between ticks. */
const SLOT = 10;
/**
 * Longest gap (ms) between ticks that start probes: probes due within one gap start
 * together. The gap is a fiftieth of the shortest delay of any check, between
 * {@link SLOT} and this, so a 1 s interval wakes the process 50 times a second
 * instead of 100 and a start is never later than 2% of the delay.
 */
const MAX_PERIOD = 20;
/**
 * Probes start at most this many times the mean probe rate (a token bucket refilled
 * at this pace), so a backlog after a stall drains without a burst.
 */
const PACE = 1.3;
/**
 * The bucket holds this many ms of the mean rate (at least 8 probes): what a tick may
 * start at once. Any 100 ms then starts at most (30 + 1.3 × 100) / 100 = 1.6 times
 * the mean, and a tick every {@link MAX_PERIOD} ms has room for what fell due.
 */
const BURST = 30;
/** Longest sleep (ms) of the tick timer when nothing is due sooner. */
const MAX_SLEEP = 1000;

interface PoolCounters {
  readonly durations: Histogram;
  passed: number;
  failed: number;
  up: number;
  down: number;
}

function stable(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
        : v,
  );
}

class HealthChecker implements HealthSubsystem {
  readonly name = "health";
  #deps: SubsystemDeps;
  #now: () => number;
  #random: () => number;
  #prober: Prober;
  #closeProber: () => void;
  /** The default prober's TCP batch: TCP probes start and finish in the wheel's tick. */
  #tcp?: TcpBatchChecker;
  /** Scratch arguments of {@link nextProbeAt}, reused so a check allocates nothing. */
  #timing = {
    interval: 0,
    fastinter: 0,
    downinter: 0,
    jitter: 0,
    anchor: 0,
    now: 0,
  };
  /** Scratch arguments of {@link jittered}. */
  #jitter = { delay: 0, jitter: 0, random: 0 };
  /** Start of the phase sequence of servers (a random draw) and how many were placed. */
  #seed: number;
  #placed = 0;
  #onProbe?: (pool: string, address: string, dueAt: number) => void;
  #entries = new Map<string, Entry>();
  #pools = new Map<string, PoolModel>();
  #counters = new Map<string, PoolCounters>();
  #inflight = new Set<Promise<void>>();
  #running = false;
  /** Probes due per wheel slot (floor(at / SLOT)), with the generation they were armed in. */
  #wheel = new Map<number, { e: Entry; gen: number }[]>();
  #wheelTimer?: ReturnType<typeof setTimeout>;
  /** When the armed tick fires ({@link HealthChecker.#now} clock); Infinity when none. */
  #wakeAt = Infinity;
  #lastSlot = 0;
  #lastTick = 0;
  #inTick = false;
  /** The last tick left due probes waiting: come back after one slot. */
  #behind = false;
  /** {@link HealthChecker.#period}, recomputed when the servers change. */
  #periodCache?: number;
  /** Probes whose time has come but that wait for the token bucket, oldest first. */
  #ready: { e: Entry; gen: number }[] = [];
  #readyHead = 0;
  /** {@link HealthChecker.#bucket}, recomputed when the servers change. */
  #bucketCache?: number;
  /** {@link PACE} times the mean probe rate (per ms), set with the bucket. */
  #pace = 0;
  /** Probes the bucket allows and that have not started yet (fractions carry over). */
  #credit = 0;

  constructor(deps: SubsystemDeps, options: HealthOptions) {
    this.#deps = deps;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#seed = this.#random();
    if (options.prober) {
      this.#prober = options.prober;
      this.#closeProber = () => {};
    } else {
      const made = createProber();
      this.#prober = made.probe;
      this.#closeProber = made.close;
      this.#tcp = made.tcp;
    }
    this.#onProbe = options.onProbe;
  }

  start(model: Model): Promise<void> {
    this.#running = true;
    this.#lastTick = this.#now();
    this.#lastSlot = Math.floor(this.#lastTick / SLOT);
    this.#reconcile(model);
    const n = this.#entries.size;
    this.#deps.log.info("health checks started", { pools: this.#pools.size, servers: n });
    return Promise.resolve();
  }

  apply(model: Model, diff: ModelDiff): Promise<void> {
    const touched = diff.pools.added.length + diff.pools.removed.length +
      diff.pools.changed.length;
    if (touched > 0) this.#reconcile(model);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#wheelTimer);
    this.#wheelTimer = undefined;
    this.#wakeAt = Infinity;
    this.#wheel.clear();
    this.#ready = [];
    this.#readyHead = 0;
    for (const entry of this.#entries.values()) this.#halt(entry);
    this.#closeProber();
    await Promise.allSettled([...this.#inflight]);
  }

  status(): SubsystemStatus {
    let up = 0;
    let usable = 0;
    for (const e of this.#entries.values()) {
      if (e.machine.health === "up") up++;
      if (this.#weight(e) > 0) usable++;
    }
    const total = this.#entries.size;
    return {
      state: this.#running ? (up < total ? "degraded" : "running") : "stopped",
      detail: `${up} of ${total} servers up, ${usable} taking traffic`,
      servers: total,
      up,
      usable,
    };
  }

  routes(app: Hono<AdminEnv>): void {
    mountPools(app, this);
  }

  metrics(): string {
    const up: Sample[] = [];
    const weight: Sample[] = [];
    for (const e of this.#entries.values()) {
      const labels = { pool: e.pool, server: e.address };
      up.push({ labels, value: e.machine.health === "up" ? 1 : 0 });
      weight.push({ labels, value: this.#weight(e) });
    }
    const durations: Sample[] = [];
    const checks: Sample[] = [];
    const transitions: Sample[] = [];
    for (const [pool, c] of this.#counters) {
      durations.push(...c.durations.samples({ pool }));
      checks.push({ labels: { pool, result: "pass" }, value: c.passed });
      checks.push({ labels: { pool, result: "fail" }, value: c.failed });
      transitions.push({ labels: { pool, to: "up" }, value: c.up });
      transitions.push({ labels: { pool, to: "down" }, value: c.down });
    }
    return [
      family("fulcrum_server_up", "gauge", {
        help: "1 when the server passes its health check, 0 when it is down",
        samples: up,
      }),
      family("fulcrum_server_weight", "gauge", {
        help: "Effective weight (0 when down, disabled or draining)",
        samples: weight,
      }),
      family("fulcrum_health_check_duration_seconds", "histogram", {
        help: "Duration of health checks",
        samples: durations,
      }),
      family("fulcrum_health_checks_total", "counter", {
        help: "Health checks run, by result",
        samples: checks,
      }),
      family("fulcrum_health_transitions_total", "counter", {
        help: "Server health transitions, by new state",
        samples: transitions,
      }),
    ].join("");
  }

  // ------------------------------------------------------------ admin API

  pools(): PoolReport[] {
    const out: PoolReport[] = [];
    for (const pool of this.#pools.values()) {
      const servers = pool.servers.map((s) =>
        this.#report(this.#entries.get(serverKey(pool.name, s.address.text))!)
      );
      out.push({
        name: pool.name,
        check: {
          type: pool.check.type,
          interval_ms: pool.check.interval,
          timeout_ms: pool.check.timeout,
          rise: pool.check.rise,
          fall: pool.check.fall,
        },
        up: servers.filter((s) => s.health === "up").length,
        servers,
      });
    }
    return out;
  }

  setAdmin(pool: string, address: string, state: AdminState): ServerReport | undefined {
    const e = this.#entries.get(serverKey(pool, address));
    if (!e) return undefined;
    if (e.admin !== state) {
      e.admin = state;
      e.reason = `admin ${
        state === "enabled" ? "enable" : state === "disabled" ? "disable" : "drain"
      }`;
      e.since = this.#now();
      this.#deps.log.info("server admin state", { pool, server: address, admin: state });
      this.#publish(e);
    }
    return this.#report(e);
  }

  setWeight(pool: string, address: string, weight: number | null): ServerReport | undefined {
    const e = this.#entries.get(serverKey(pool, address));
    if (!e) return undefined;
    e.override = weight ?? undefined;
    this.#deps.log.info("server weight override", {
      pool,
      server: address,
      weight: weight ?? "configured",
    });
    this.#publish(e);
    return this.#report(e);
  }

  // ------------------------------------------------------------ internals

  #report(e: Entry): ServerReport {
    return {
      address: e.address,
      health: e.machine.health,
      admin: e.admin,
      weight: {
        configured: e.server.weight,
        override: e.override ?? null,
        dynamic: e.dynamic ?? null,
        effective: this.#weight(e),
      },
      last_check: e.last
        ? {
          ok: e.last.ok,
          reason: e.last.reason,
          duration_ms: Math.round(e.last.duration * 1000) / 1000,
          at: new Date(e.last.at).toISOString(),
        }
        : null,
      last_change: { at: new Date(e.since).toISOString(), reason: e.reason },
    };
  }

  #weight(e: Entry): number {
    return effectiveWeight({
      health: e.machine.health,
      admin: e.admin,
      configured: e.server.weight,
      override: e.override,
      dynamic: e.dynamic,
      recoveredAt: e.machine.recoveredAt,
    }, { now: this.#now(), slowstart: e.slowstart });
  }

  #publish(e: Entry): void {
    const effective = this.#weight(e);
    const health = e.machine.health;
    const sig = `${health}|${e.admin}|${e.server.weight}|${effective}|${e.since}|${e.reason}`;
    if (sig === e.published) return;
    e.published = sig;
    this.#deps.states.set({
      pool: e.pool,
      address: e.address,
      health,
      admin: e.admin,
      configuredWeight: e.server.weight,
      effectiveWeight: effective,
      reason: e.reason,
      since: e.since,
    });
  }

  #countersOf(pool: string): PoolCounters {
    let c = this.#counters.get(pool);
    if (!c) {
      c = {
        durations: new Histogram([0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
        passed: 0,
        failed: 0,
        up: 0,
        down: 0,
      };
      this.#counters.set(pool, c);
    }
    return c;
  }

  /** Makes the entries match `model`: adds, removes, updates and restarts checks. */
  #reconcile(model: Model): void {
    this.#bucketCache = undefined;
    this.#periodCache = undefined;
    const wanted = new Set<string>();
    for (const pool of Object.values(model.pools)) {
      const before = this.#pools.get(pool.name);
      const checkChanged = before !== undefined &&
        (stable(before.check) !== stable(pool.check) || before.slowstart !== pool.slowstart);
      this.#pools.set(pool.name, pool);
      this.#countersOf(pool.name);
      for (const server of pool.servers) {
        const key = serverKey(pool.name, server.address.text);
        wanted.add(key);
        const e = this.#entries.get(key);
        if (!e) {
          this.#add(pool, server);
          continue;
        }
        const serverChanged = stable(e.server) !== stable(server);
        e.server = server;
        if (e.target) {
          const port = pool.check.port ?? server.address.port;
          // The socket kept for the old target's next check is closed.
          if (
            pool.check.type !== "tcp" || e.target.host !== server.address.host ||
            e.target.port !== port
          ) {
            this.#tcp?.release(e.target);
          }
        }
        e.target = undefined;
        if (checkChanged) {
          e.check = pool.check;
          e.slowstart = pool.slowstart;
          e.dynamic = undefined;
          e.machine = { ...e.machine, passes: 0, failures: 0 };
          this.#halt(e);
          this.#startProbing(e);
        }
        if (serverChanged || checkChanged) this.#publish(e);
      }
    }
    for (const [key, e] of this.#entries) {
      if (wanted.has(key)) continue;
      this.#halt(e);
      if (e.target) this.#tcp?.release(e.target);
      this.#entries.delete(key);
      this.#deps.states.delete(e.pool, e.address);
    }
    for (const name of [...this.#pools.keys()]) {
      if (!(name in model.pools)) {
        this.#pools.delete(name);
        this.#counters.delete(name);
      }
    }
  }

  #add(pool: PoolModel, server: ServerConfig): void {
    const now = this.#now();
    const none = pool.check.type === "none";
    const machine = initialHealth(none ? "up" : pool.check.assume, now);
    const e: Entry = {
      pool: pool.name,
      address: server.address.text,
      server,
      check: pool.check,
      slowstart: pool.slowstart,
      machine,
      admin: "enabled",
      reason: none ? "no check" : machine.reason,
      since: now,
      gen: 0,
      anchor: 0,
      tcpBusy: false,
      tcpGen: 0,
      tcpT0: 0,
    };
    this.#entries.set(serverKey(e.pool, e.address), e);
    this.#publish(e);
    this.#startProbing(e);
  }

  /** Stops the entry's timers and any probe in flight. */
  #halt(e: Entry): void {
    e.gen++;
    clearTimeout(e.rampTimer);
    e.dueAt = undefined;
    e.rampTimer = undefined;
    e.abort?.abort();
    e.abort = undefined;
  }

  #startProbing(e: Entry): void {
    if (!this.#running || e.check.type === "none") return;
    const now = this.#now();
    const phase = spreadPhase(this.#seed, this.#placed++);
    e.anchor = firstProbeAt(now, { interval: e.check.interval, phase });
    this.#arm(e, e.anchor);
  }

  /** Puts the entry's next probe on the wheel. */
  #arm(e: Entry, at: number): void {
    e.dueAt = at;
    const slot = Math.max(Math.floor(at / SLOT), this.#lastSlot + 1);
    const bucket = this.#wheel.get(slot);
    const item = { e, gen: e.gen };
    if (bucket) bucket.push(item);
    else this.#wheel.set(slot, [item]);
    // A tick arms the next one itself when it ends.
    if (!this.#inTick) this.#wake(Math.max(slot * SLOT, this.#lastTick + this.#period()));
  }

  /** Arms the tick timer for `at` (same clock as `now`) unless it fires sooner already. */
  #wake(at: number): void {
    if (!this.#running) return;
    if (this.#wheelTimer !== undefined && this.#wakeAt <= at) return;
    clearTimeout(this.#wheelTimer);
    const now = this.#now();
    const delay = Math.min(MAX_SLEEP, Math.max(0, at - now));
    this.#wakeAt = now + delay;
    this.#wheelTimer = setTimeout(this.#onTimer, delay);
  }

  #onTimer = (): void => {
    this.#wheelTimer = undefined;
    this.#wakeAt = Infinity;
    this.#tick();
  };

  /** The gap between ticks, {@link MAX_PERIOD} at most; see there. */
  #period(): number {
    if (this.#periodCache !== undefined) return this.#periodCache;
    let shortest = Infinity;
    for (const e of this.#entries.values()) {
      if (e.check.type === "none") continue;
      shortest = Math.min(shortest, e.check.interval, e.check.fastinter, e.check.downinter);
    }
    const period = Math.floor(shortest / 50 / SLOT) * SLOT;
    return this.#periodCache = Math.max(SLOT, Math.min(MAX_PERIOD, period));
  }

  /**
   * The size of the token bucket that paces starts: {@link BURST} ms of the mean rate,
   * at least 8 (the mean from each server's shortest delay, so a mass transition at
   * `fastinter` is not held back); sets the refill pace, {@link PACE} times the mean.
   * After the process was starved of CPU or stalled, the backlog then starts at that
   * pace instead of in one burst.
   */
  #bucket(): number {
    let perMs = 0;
    for (const e of this.#entries.values()) {
      if (e.check.type === "none") continue;
      const shortest = Math.min(e.check.interval, e.check.fastinter, e.check.downinter);
      perMs += 1 / Math.max(1, shortest);
    }
    this.#pace = PACE * perMs;
    return Math.max(8, BURST * perMs);
  }

  /**
   * Moves every probe whose slot has come to the ready queue, starts as many as the
   * token bucket holds, polls the connects under way and arms the next tick.
   */
  #tick(): void {
    this.#inTick = true;
    try {
      this.#startDue();
    } finally {
      this.#inTick = false;
    }
    if (!this.#running) return;
    const now = this.#now();
    if (this.#behind) {
      // Catching up: come back after one slot.
      this.#wake(now + SLOT);
      return;
    }
    const next = now + this.#period();
    // Connects still under way are polled again by the next tick, one period on (their
    // results and timeouts are late by at most that).
    if ((this.#tcp?.pending ?? 0) > 0) return this.#wake(next);
    const last = this.#lastSlot + Math.ceil(MAX_SLEEP / SLOT);
    for (let slot = this.#lastSlot + 1; slot <= last; slot++) {
      if (this.#wheel.has(slot)) return this.#wake(Math.max(next, slot * SLOT));
    }
    this.#wake(now + MAX_SLEEP);
  }

  #startDue(): void {
    const now = this.#now();
    const elapsed = now - this.#lastTick;
    this.#lastTick = now;
    const current = Math.floor(now / SLOT);
    for (let slot = this.#lastSlot + 1; slot <= current; slot++) {
      const bucket = this.#wheel.get(slot);
      if (!bucket) continue;
      this.#wheel.delete(slot);
      for (const item of bucket) this.#ready.push(item);
    }
    this.#lastSlot = Math.max(this.#lastSlot, current);
    const bucket = this.#bucketCache ??= this.#bucket();
    // A token bucket: refilled at PACE times the mean rate for the time that passed,
    // holding BURST ms of it, so even after a stall or a late timer no 100 ms starts
    // more than 1.6 times the mean.
    this.#credit = Math.min(bucket, this.#credit + Math.max(1, this.#pace * elapsed));
    const budget = Math.floor(this.#credit);
    let started = 0;
    while (started < budget && this.#readyHead < this.#ready.length) {
      const { e, gen } = this.#ready[this.#readyHead++];
      if (gen !== e.gen || e.dueAt === undefined) continue;
      started++;
      const dueAt = e.dueAt;
      e.dueAt = undefined;
      if (this.#tcp && e.check.type === "tcp") {
        this.#startTcp(this.#tcp, e, gen, dueAt);
        continue;
      }
      const run = this.#run(e, gen, dueAt);
      this.#inflight.add(run);
      run.finally(() => this.#inflight.delete(run));
    }
    this.#credit -= started;
    // Loopback and LAN connects have mostly completed by now; the rest are polled
    // on later ticks until they complete or time out.
    this.#tcp?.poll();
    this.#behind = this.#readyHead < this.#ready.length;
    if (this.#readyHead === this.#ready.length) {
      this.#ready = [];
      this.#readyHead = 0;
    } else if (this.#readyHead > 4096) {
      this.#ready = this.#ready.slice(this.#readyHead);
      this.#readyHead = 0;
    }
  }

  /**
   * Starts a TCP probe on the shared batch. Its outcome arrives synchronously, from
   * this tick's or a later tick's poll, through a callback reused across probes.
   */
  #startTcp(tcp: TcpBatchChecker, e: Entry, gen: number, dueAt: number): void {
    this.#onProbe?.(e.pool, e.address, dueAt);
    const target = e.target ??= {
      host: e.server.address.host,
      port: e.check.port ?? e.server.address.port,
    };
    const t0 = performance.now();
    e.abort = undefined;
    if (e.tcpBusy) {
      // A probe of an older generation is still out: this one gets its own callback.
      tcp.start(target, e.check, (outcome) => this.#complete(e, gen, t0, outcome));
      return;
    }
    e.tcpBusy = true;
    e.tcpGen = gen;
    e.tcpT0 = t0;
    e.tcpDone ??= (outcome) => {
      e.tcpBusy = false;
      this.#complete(e, e.tcpGen, e.tcpT0, outcome);
    };
    tcp.start(target, e.check, e.tcpDone);
  }

  async #run(e: Entry, gen: number, dueAt: number): Promise<void> {
    const t0 = performance.now();
    // TCP probes end within their timeout and are failed at once on stop; the others
    // (processes, HTTP reads) get their own abort so a restart or stop ends them now.
    const abort = e.check.type === "tcp" ? undefined : new AbortController();
    e.abort = abort;
    this.#onProbe?.(e.pool, e.address, dueAt);
    let outcome: CheckOutcome;
    try {
      outcome = await this.#prober(
        { pool: e.pool, host: e.server.address.host, port: e.server.address.port },
        e.check,
        { signal: abort?.signal },
      );
    } catch (error) {
      outcome = { ok: false, reason: `check crashed: ${(error as Error)?.message ?? error}` };
    }
    this.#complete(e, gen, t0, outcome);
  }

  /** Takes a probe's outcome: counters, rise/fall, publish on change, next probe. */
  #complete(e: Entry, gen: number, t0: number, outcome: CheckOutcome): void {
    if (gen !== e.gen || !this.#running) return;
    e.abort = undefined;
    const duration = performance.now() - t0;
    const now = this.#now();
    const counters = this.#countersOf(e.pool);
    counters.durations.observe(duration / 1000);
    if (outcome.ok) counters.passed++;
    else counters.failed++;
    const last = e.last;
    if (last) {
      last.ok = outcome.ok;
      last.reason = outcome.reason;
      last.duration = duration;
      last.at = now;
    } else {
      e.last = { ok: outcome.ok, reason: outcome.reason, duration, at: now };
    }
    const exec = e.check.type === "exec";
    if (exec && outcome.ok) e.dynamic = outcome.weight;
    const m = e.machine;
    // The steady case (up and passing, or down and failing, with no count under way)
    // changes nothing: skip the machine and the publish.
    const steady = m.health === "up"
      ? outcome.ok && m.failures === 0
      : !outcome.ok && m.passes === 0;
    let transition: string | undefined;
    if (!steady) {
      const observed = observe(m, outcome, {
        rise: e.check.rise,
        fall: e.check.fall,
        now,
      });
      e.machine = observed.state;
      transition = observed.transition;
    }
    if (transition) {
      e.reason = outcome.reason;
      e.since = now;
      if (transition === "up") counters.up++;
      else counters.down++;
      const fields = {
        pool: e.pool,
        server: e.address,
        reason: outcome.reason,
        checks: transition === "up" ? e.check.rise : e.check.fall,
      };
      if (transition === "down") this.#deps.log.warn("server down", fields);
      else this.#deps.log.info("server up", fields);
      if (transition === "up") this.#armRamp(e);
    }
    // Without a transition only a dynamic (exec) weight or a slow-start ramp can
    // change what is published.
    if (transition || exec || e.rampTimer !== undefined) this.#publish(e);
    const t = this.#timing;
    t.interval = e.check.interval;
    t.fastinter = e.check.fastinter;
    t.downinter = e.check.downinter;
    t.jitter = e.check.jitter;
    t.anchor = e.anchor;
    t.now = now;
    e.anchor = nextProbeAt(e.machine, t);
    const j = this.#jitter;
    j.delay = baseDelay(e.machine, t);
    j.jitter = t.jitter;
    j.random = this.#random();
    this.#arm(e, jittered(e.anchor, j));
  }

  /** Re-publishes the weight in steps while slow start ramps it. */
  #armRamp(e: Entry): void {
    clearTimeout(e.rampTimer);
    const at = nextRampAt(e.machine.recoveredAt, { now: this.#now(), slowstart: e.slowstart });
    if (at === undefined) return;
    const gen = e.gen;
    e.rampTimer = setTimeout(() => {
      e.rampTimer = undefined;
      if (gen !== e.gen || e.machine.health !== "up") return;
      this.#publish(e);
      this.#armRamp(e);
    }, Math.max(0, at - this.#now()));
  }
}

/**
 * Creates the health subsystem. It writes every server's state into `deps.states`;
 * `routes` mounts `/api/v1/pools` and `/api/v1/servers/…`; `metrics` exports
 * `fulcrum_server_up`, `fulcrum_server_weight`, check durations and transitions.
 */
export function createHealth(deps: SubsystemDeps, options: HealthOptions = {}): HealthSubsystem {
  return new HealthChecker(deps, options);
}
