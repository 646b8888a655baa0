/**
 * One virtual service as the userspace plane runs it: its real servers (with weights
 * from the shared server states), scheduler, persistence templates, counters and
 * rates, and the view `GET /api/v1/services` shows. Pure: no sockets, time passed in.
 * @module
 */
import type { PoolModel } from "../config/model.ts";
import type { ServiceConfig } from "../config/schema.ts";
import type { ServerState } from "../health/state.ts";
import type { DestView, ServiceView } from "./dataplane.ts";
import { createScheduler, Dest, type Scheduler, updateOverload } from "./sched/mod.ts";
import { Persistence, type Template } from "./persistence.ts";
import { Estimator, Stats } from "./stats.ts";
import type { StateTimeouts } from "./conn_table.ts";
import type { DropReason } from "./defense.ts";

/** A real server of one service. */
export class RealServer extends Dest {
  /** Endpoint text as in the Model. */
  readonly address: string;
  readonly stats: Stats = new Stats();
  readonly estimator: Estimator;
  readonly drops = new Map<DropReason, number>();
  upper: number;
  lower: number;
  /** In the scheduler's list (false: removed because down with on_down remove, or gone). */
  inService = true;
  /** Admin state from the server states. */
  admin: ServerState["admin"] = "enabled";
  health: ServerState["health"] = "up";

  /** A server from its config entry. */
  constructor(config: PoolModel["servers"][number]) {
    super(config.address.host, config.address.port, config.weight);
    this.address = config.address.text;
    this.upper = config.upper_threshold || config.max_conns;
    this.lower = config.lower_threshold;
    this.estimator = new Estimator(this.stats);
  }
}

/** Where a new connection goes. */
export interface Placement {
  readonly dest: RealServer;
  readonly template?: Template<RealServer>;
}

/** Reads a server's state from the shared table. */
export type StateLookup = (pool: string, address: string) => ServerState | undefined;

/** One virtual service of the userspace plane. */
export class ServiceRuntime {
  readonly stats: Stats = new Stats();
  readonly estimator: Estimator = new Estimator(this.stats);
  readonly drops = new Map<DropReason, number>();
  /** Every configured server by address text. */
  readonly servers = new Map<string, RealServer>();
  /** Scheduler list: newest first. */
  list: RealServer[] = [];
  scheduler: Scheduler;
  persistence?: Persistence<RealServer>;
  readonly timeouts: StateTimeouts;

  /** A service from its config and pool, weights from `states`. */
  constructor(public config: ServiceConfig, pool: PoolModel, states: StateLookup) {
    this.scheduler = createScheduler(config.scheduler, { flags: config.scheduler_flags });
    if (config.persistence) {
      this.persistence = new Persistence(config.persistence.timeout, config.persistence.netmask);
    }
    this.timeouts = {
      syn: config.timeouts.connect,
      established: config.timeouts.idle,
      finWait: config.timeouts.fin_wait,
      udp: config.timeouts.udp,
    };
    this.setPool(pool, states);
  }

  /** Name of the service. */
  get name(): string {
    return this.config.name;
  }

  /**
   * Takes the pool's servers: new ones are added one at a time at the head of the list
   * (the kernel's order), removed ones leave; then weights are refreshed.
   */
  setPool(pool: PoolModel, states: StateLookup): RealServer[] {
    const wanted = new Set(pool.servers.map((s) => s.address.text));
    const removed: RealServer[] = [];
    for (const [address, server] of this.servers) {
      if (wanted.has(address)) continue;
      this.servers.delete(address);
      server.inService = false;
      this.persistence?.forget(server);
      removed.push(server);
    }
    for (const config of pool.servers) {
      const existing = this.servers.get(config.address.text);
      if (existing) {
        existing.upper = config.upper_threshold || config.max_conns;
        existing.lower = config.lower_threshold;
        continue;
      }
      const server = new RealServer(config);
      this.servers.set(server.address, server);
      this.list = [server, ...this.list.filter((s) => s !== server)];
      this.scheduler.update(this.list.filter((s) => s.inService));
    }
    this.list = this.list.filter((s) => this.servers.get(s.address) === s);
    this.refresh(pool, states);
    return removed;
  }

  /**
   * Re-reads every server's weight and state: a down server leaves the list with
   * `on_down: remove` (and rejoins at its head when up again, as a re-added kernel
   * dest does) or gets weight 0 with `quiesce`; disabled and draining servers get
   * weight 0. Tells the scheduler when anything changed.
   */
  refresh(pool: PoolModel, states: StateLookup): void {
    let changed = false;
    for (const server of this.servers.values()) {
      const state = states(pool.name, server.address);
      const config = pool.servers.find((s) => s.address.text === server.address);
      const weight = state ? state.effectiveWeight : config?.weight ?? 0;
      const health = state?.health ?? "up";
      const inService = !(health === "down" && this.config.on_down === "remove");
      if (server.weight !== weight || server.inService !== inService) changed = true;
      if (inService && !server.inService) {
        // Back from removal: like a dest added again, it joins at the head of the list.
        this.list = [server, ...this.list.filter((s) => s !== server)];
      }
      server.weight = weight;
      server.inService = inService;
      server.health = health;
      server.admin = state?.admin ?? "enabled";
    }
    if (changed) this.scheduler.update(this.list.filter((s) => s.inService));
  }

  /**
   * Chooses the server for a new connection from `address:port`: the persistence
   * template when alive and its server usable, else the scheduler (and a new template).
   */
  place(address: string, port: number, now: number): Placement | undefined {
    const context = {
      client: { address, port },
      destination: { address: this.config.vip?.host ?? "0.0.0.0", port: this.config.vip?.port },
      now,
    };
    if (this.persistence) {
      const bound = this.persistence.lookup(
        address,
        now,
        (d) => d.inService && d.weight > 0 && !d.overloaded,
      );
      const dest = bound ?? (this.scheduler.pick(context) as RealServer | undefined);
      if (!dest) return undefined;
      return { dest, template: this.persistence.bind(address, dest, now) };
    }
    const dest = this.scheduler.pick(context) as RealServer | undefined;
    return dest ? { dest } : undefined;
  }

  /** A connection was bound to `dest`: counts it and updates the overload flag. */
  bound(dest: RealServer): void {
    this.stats.conns++;
    dest.stats.conns++;
    updateOverload(dest, { upper: dest.upper, lower: dest.lower }, { bound: true });
  }

  /** A connection of `dest` left the table: updates the overload flag. */
  unbound(dest: RealServer, template?: Template<RealServer>): void {
    updateOverload(dest, { upper: dest.upper, lower: dest.lower }, { bound: false });
    if (template) this.persistence?.release(template);
  }

  /** Counts a drop on the service (and the server, when there is one). */
  drop(reason: DropReason, dest?: RealServer): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
    if (dest) dest.drops.set(reason, (dest.drops.get(reason) ?? 0) + 1);
  }

  /** One estimator period passed. */
  tick(): void {
    this.estimator.tick();
    for (const s of this.servers.values()) s.estimator.tick();
  }

  /** The service as `ipvsadm -Ln --stats --rate` would show it. */
  view(): ServiceView {
    const c = this.config;
    const dests: DestView[] = this.list.filter((s) => s.inService).map((s) => ({
      address: s.address,
      forward: "local",
      weight: s.weight,
      activeConns: s.activeConns,
      inactiveConns: s.inactiveConns,
      persistentConns: this.persistence?.countFor(s) ?? 0,
      stats: s.stats.snapshot(),
      rates: s.estimator.rates(),
    }));
    return {
      name: c.name,
      protocol: c.protocol,
      vip: c.vip?.text,
      fwmark: c.fwmark,
      scheduler: c.scheduler,
      flags: c.scheduler_flags,
      persistence: c.persistence
        ? { timeout: c.persistence.timeout, netmask: c.persistence.netmask }
        : undefined,
      dests,
      stats: this.stats.snapshot(),
      rates: this.estimator.rates(),
    };
  }
}
