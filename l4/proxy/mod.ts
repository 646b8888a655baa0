/**
 * The userspace data plane: TCP and UDP listeners per virtual service on its VIP (the
 * listen address), the shared connection table with its GC, the DoS defenses, the
 * 2 s estimator and the scheduler housekeeping, all driven by Models and server states.
 * @module
 */
import type net from "node:net";
import type dgram from "node:dgram";
import type { Model, PoolModel } from "../../config/model.ts";
import type { ModelDiff } from "../../config/diff.ts";
import type { ServerStates } from "../../health/state.ts";
import type { Logger } from "../../log.ts";
import type { Dataplane, ServiceView } from "../dataplane.ts";
import { type Conn, ConnTable } from "../conn_table.ts";
import {
  type DefenseSettings,
  type DropCounts,
  type DropReason,
  embryonicToShed,
} from "../defense.ts";
import { type RealServer, ServiceRuntime } from "../service.ts";
import { ESTIMATOR_INTERVAL } from "../stats.ts";
import { CHECK_EXPIRE_INTERVAL } from "../sched/locality.ts";
import type { Closer, PlaneContext } from "./context.ts";
import { spliceAvailable, spliceSlots } from "../../sys/splice.ts";

/** How often the GC, persistence and embryonic sweeps run. */
export const SWEEP_INTERVAL = 1000;
/** Connections the GC examines per sweep. */
export const GC_BUDGET = 4096;

/** What the userspace plane needs. */
export interface UserspaceDeps {
  readonly states: ServerStates;
  readonly log: Logger;
}

/** The userspace plane with its internals exposed for status and tests. */
export interface UserspacePlane extends Dataplane {
  readonly kind: "userspace";
  /** The connection table. */
  readonly table: ConnTable<RealServer>;
  /** The running services by name. */
  readonly runtimes: ReadonlyMap<string, ServiceRuntime>;
  /** Services with per-destination stats and rates (synchronous here). */
  services(): ServiceView[];
  /** Drops by reason per service, and per service and real server. */
  drops(): DropCounts;
  /** Kernel splice use of bulk TCP flows (process-wide). */
  splice(): { active: number; opened: number; refused: number; max: number; available: boolean };
}

function defenseOf(model: Model): DefenseSettings {
  const d = model.l4.defense;
  return {
    maxConns: d.max_conns,
    perSource: d.per_source,
    embryonicTimeout: d.embryonic_timeout,
    dropEntry: Math.max(d.drop_entry, d.secure_tcp),
  };
}

/** Creates the userspace plane; `start(model)` opens the listeners. */
export function createUserspacePlane(
  deps: UserspaceDeps,
  options: {
    now?: () => number;
    /** On stop, how long open connections may finish before they are closed (ms). */
    drainMs?: number;
  } = {},
): UserspacePlane {
  const now = options.now ?? (() => performance.now());
  const table = new ConnTable<RealServer>({
    syn: 3000,
    established: 900_000,
    finWait: 120_000,
    udp: 300_000,
  });
  const runtimes = new Map<string, ServiceRuntime>();
  const listeners = new Map<string, net.Server | dgram.Socket>();
  const closers = new Map<number, Closer>();
  const connsById = new Map<number, Conn<RealServer>>();
  let model: Model | undefined;
  let defense: DefenseSettings = {
    maxConns: 0,
    perSource: 0,
    embryonicTimeout: 10_000,
    dropEntry: 0,
  };
  const timers: ReturnType<typeof setInterval>[] = [];
  let lastExpire = 0;

  const ctx: PlaneContext = {
    table,
    log: deps.log,
    defense: () => defense,
    now,
    track(conn, closer) {
      closers.set(conn.id, closer);
      connsById.set(conn.id, conn);
    },
    untrack(conn) {
      closers.delete(conn.id);
      connsById.delete(conn.id);
    },
    drop(conn, reason, reset) {
      runtimes.get(conn.service)?.drop(reason, conn.dest);
      const closer = closers.get(conn.id);
      if (closer) closer.close(reset);
      else table.remove(conn);
    },
  };

  const lookup = (pool: string, address: string) => deps.states.get(pool, address);

  function poolOf(name: string): PoolModel {
    const pool = model?.pools[name];
    if (!pool) {
      throw new Error(`pool "${name}" is not defined; add it under pools: or fix the service`);
    }
    return pool;
  }

  async function open(svc: ServiceRuntime): Promise<void> {
    const c = svc.config;
    if (!c.vip) {
      deps.log.warn("firewall-mark service is modelled only in userspace", { service: c.name });
      return;
    }
    if (c.protocol === "sctp") {
      deps.log.warn("sctp is not carried by the userspace plane", { service: c.name });
      return;
    }
    // node:net and node:dgram (~5 MB of RSS) load with the first service that needs them
    const listener = c.protocol === "udp"
      ? await (await import("./udp.ts")).listenUdp(svc, ctx)
      : await (await import("./tcp.ts")).listenTcp(svc, ctx);
    listeners.set(c.name, listener);
    deps.log.info("service listening", {
      service: c.name,
      vip: c.vip.text,
      protocol: c.protocol,
      scheduler: c.scheduler,
    });
  }

  async function close(name: string): Promise<void> {
    const listener = listeners.get(name);
    listeners.delete(name);
    if (!listener) return;
    if ("listen" in listener) {
      // Stops accepting at once; its callback would wait for every open connection,
      // which drain or the nodest policy handle, so it is not awaited.
      (listener as net.Server).close();
      await new Promise((r) => setTimeout(r, 0));
      return;
    }
    await new Promise<void>((resolve) => (listener as dgram.Socket).close(() => resolve()));
  }

  /** Applies the nodest policy / admin state to connections of servers of `svc`. */
  function enforce(svc: ServiceRuntime, removed: readonly RealServer[] = []): void {
    const gone = new Set(removed);
    for (const conn of [...connsById.values()]) {
      if (conn.service !== svc.name) continue;
      const d = conn.dest;
      const resetIt = d.admin === "disabled" ||
        (svc.config.nodest === "reset" && (gone.has(d) || !d.inService || d.health === "down"));
      if (resetIt) ctx.drop(conn, "dest_removed", true);
    }
  }

  function sweep(): void {
    for (const closer of closers.values()) closer.flush?.();
    const t = now();
    for (const conn of table.gc(t, GC_BUDGET)) {
      // A UDP session ending by timeout is its normal end; a TCP one is a drop.
      if (conn.protocol === "tcp") runtimes.get(conn.service)?.drop("idle_timeout", conn.dest);
      closers.get(conn.id)?.close(false);
    }
    for (const conn of embryonicToShed(table, defense, t)) ctx.drop(conn, "shed_embryonic", true);
    for (const svc of runtimes.values()) svc.persistence?.gc(t);
    if (t - lastExpire >= CHECK_EXPIRE_INTERVAL) {
      lastExpire = t;
      for (const svc of runtimes.values()) svc.scheduler.expire(t);
    }
  }

  async function addService(config: Model["l4"]["services"][number]): Promise<void> {
    const svc = new ServiceRuntime(config, poolOf(config.pool), lookup);
    runtimes.set(config.name, svc);
    await open(svc);
  }

  return {
    kind: "userspace",
    table,
    runtimes,
    async start(m) {
      model = m;
      defense = defenseOf(m);
      lastExpire = now();
      try {
        for (const config of m.l4.services) await addService(config);
      } catch (err) {
        for (const name of [...listeners.keys()]) await close(name);
        runtimes.clear();
        throw err;
      }
      timers.push(setInterval(sweep, SWEEP_INTERVAL));
      timers.push(setInterval(() => {
        for (const closer of closers.values()) closer.flush?.();
        for (const svc of runtimes.values()) svc.tick();
      }, ESTIMATOR_INTERVAL));
    },
    async apply(m, diff: ModelDiff) {
      model = m;
      defense = defenseOf(m);
      const byName = new Map(m.l4.services.map((s) => [s.name, s]));
      for (const name of diff.services.removed) {
        await close(name);
        runtimes.delete(name);
      }
      for (const name of diff.services.changed) {
        const config = byName.get(name)!;
        const old = runtimes.get(name);
        const sameListener = old && old.config.vip?.text === config.vip?.text &&
          old.config.protocol === config.protocol;
        if (
          old && sameListener && old.config.scheduler === config.scheduler &&
          JSON.stringify(old.config.scheduler_flags) === JSON.stringify(config.scheduler_flags) &&
          JSON.stringify(old.config.persistence) === JSON.stringify(config.persistence) &&
          JSON.stringify(old.config.timeouts) === JSON.stringify(config.timeouts)
        ) {
          old.config = config;
          enforce(old, old.setPool(poolOf(config.pool), lookup));
          continue;
        }
        await close(name);
        runtimes.delete(name);
        await addService(config);
      }
      for (const name of diff.services.added) await addService(byName.get(name)!);
      const pools = new Set([...diff.pools.changed, ...diff.servers.map((s) => s.pool)]);
      for (const svc of runtimes.values()) {
        if (!pools.has(svc.config.pool)) continue;
        enforce(svc, svc.setPool(poolOf(svc.config.pool), lookup));
      }
    },
    serverChanged(pool) {
      if (!model?.pools[pool]) return;
      for (const svc of runtimes.values()) {
        if (svc.config.pool !== pool) continue;
        svc.refresh(poolOf(pool), lookup);
        enforce(svc);
      }
    },
    async stop() {
      for (const name of [...listeners.keys()]) await close(name);
      const until = now() + (options.drainMs ?? 0);
      while (closers.size > 0 && now() < until) await new Promise((r) => setTimeout(r, 50));
      if (closers.size > 0) deps.log.info("closing connections at stop", { open: closers.size });
      for (const t of timers.splice(0)) clearInterval(t);
      for (const closer of [...closers.values()]) closer.close(false);
      runtimes.clear();
    },
    services(): ServiceView[] {
      return [...runtimes.values()].map((s) => s.view());
    },
    drops() {
      const services: Record<string, Record<string, number>> = {};
      const servers: Record<string, Record<string, Record<string, number>>> = {};
      for (const svc of runtimes.values()) {
        services[svc.name] = Object.fromEntries(svc.drops);
        servers[svc.name] = {};
        for (const server of svc.servers.values()) {
          if (server.drops.size) {
            servers[svc.name][server.address] = Object.fromEntries(server.drops);
          }
        }
      }
      return { services, servers };
    },
    splice() {
      return { ...spliceSlots, available: spliceAvailable() };
    },
    status() {
      return {
        services: runtimes.size,
        listening: [...listeners.keys()],
        connections: table.size,
        splice: this.splice(),
      };
    },
  };
}

/** A drop reason's count on a service, for tests and metrics. */
export function dropCount(svc: ServiceRuntime, reason: DropReason): number {
  return svc.drops.get(reason) ?? 0;
}
