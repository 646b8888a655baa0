/**
 * The L7 content switch: listeners that match each HTTP request against ordered
 * rules, pick a pool, and send the request to a server chosen by bounded-load
 * consistent hashing (or an L4 scheduler), through Fulcrum's own HTTP/1.1 proxy.
 *
 * ```ts
 * const l7 = createL7(deps);
 * await l7.start(model);          // opens every model.l7.listeners entry
 * await l7.apply(next, diff);     // swaps rules/pools atomically, drains removed listeners
 * await l7.stop();                // drains
 * ```
 * @module
 */
import type { Hono } from "hono";
import type { ModelDiff } from "../config/diff.ts";
import type { Model } from "../config/model.ts";
import type { ListenerConfig } from "../config/schema.ts";
import type { AdminEnv, Subsystem, SubsystemDeps, SubsystemStatus } from "../subsystem.ts";
import { mountRoute } from "../admin/route.ts";
import { explain, type ExplainQuery, type Explanation } from "./explain.ts";
import { Deadlines } from "./io.ts";
import { L7Metrics } from "./metrics.ts";
import { PoolRuntime } from "./pool.ts";
import {
  defaultSockets,
  ProxyListener,
  type ProxyShared,
  type RouteState,
  type SocketKind,
  Upstreams,
} from "./proxy.ts";
import { splicedBytes, tcpIdle } from "../sys/tcp.ts";
import { compileRules } from "./rules.ts";

export type { ExplainQuery, Explanation } from "./explain.ts";
export type { SocketKind } from "./proxy.ts";
export { L7Metrics } from "./metrics.ts";

/** The L7 subsystem plus what the admin API and tests read. */
export interface L7 extends Subsystem {
  /** Explains a routing decision (`GET /api/v1/route`); a string is a user error. */
  explain(query: ExplainQuery & { listener?: string }): Explanation | string;
  /** Bound address of a listener by name (tests use port 0). */
  address(listener: string): Deno.NetAddr | undefined;
  /** The counters. */
  readonly counters: L7Metrics;
}

/** Waits for `p`, at most `ms`. */
async function settled(p: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise((r) => timer = setTimeout(r, ms))]);
  clearTimeout(timer);
}

function sameSocket(a: ListenerConfig, b: ListenerConfig): boolean {
  return a.listen.text === b.listen.text && JSON.stringify(a.tls) === JSON.stringify(b.tls);
}

/**
 * Creates the L7 switch; nothing listens until `start`. `options.sockets` picks the
 * socket layer of plain-TCP listeners and server connections (default: Fulcrum's
 * epoll sockets when FFI is allowed, else Deno's).
 */
export function createL7(deps: SubsystemDeps, options: { sockets?: SocketKind } = {}): L7 {
  const log = deps.log;
  const metrics = new L7Metrics();
  const sockets = options.sockets ?? defaultSockets();
  const shared: ProxyShared = {
    upstreams: new Upstreams(256, { sockets }),
    deadlines: new Deadlines(100),
    metrics,
    log,
    sockets,
  };
  let pools = new Map<string, PoolRuntime>();
  const listeners = new Map<string, ProxyListener>();
  const draining = new Set<Promise<void>>();
  let state: SubsystemStatus["state"] = "stopped";
  let detail: string | undefined;
  let unsubscribe: (() => void) | undefined;

  const weightOf = (pool: string) => (address: string) =>
    deps.states.get(pool, address)?.effectiveWeight;

  function buildPools(
    model: Model,
    keep: ReadonlyMap<string, PoolRuntime>,
    changed: ReadonlySet<string>,
  ) {
    const next = new Map<string, PoolRuntime>();
    for (const [name, pool] of Object.entries(model.pools)) {
      const old = keep.get(name);
      next.set(name, old && !changed.has(name) ? old : new PoolRuntime(pool, weightOf(name)));
    }
    return next;
  }

  function routeState(config: ListenerConfig): RouteState {
    return { config, table: compileRules(config), pools };
  }

  function drainInBackground(listener: ProxyListener, ms: number): void {
    const p = listener.drain(ms).catch((err) => log.warn("drain failed", { error: String(err) }));
    draining.add(p);
    p.finally(() => draining.delete(p));
  }

  async function open(config: ListenerConfig): Promise<void> {
    const listener = new ProxyListener(routeState(config), shared);
    listener.start();
    listeners.set(config.name, listener);
    log.info("listener open", {
      listener: config.name,
      listen: listener.addr?.hostname + ":" + listener.addr?.port,
    });
    await Promise.resolve();
  }

  return {
    name: "l7",
    counters: metrics,

    async start(model: Model): Promise<void> {
      state = "starting";
      pools = buildPools(model, new Map(), new Set());
      unsubscribe = deps.states.subscribe((event) => {
        if (event.kind === "removed") return;
        const pool = pools.get(event.state.pool);
        if (pool?.setWeight(event.state.address, event.state.effectiveWeight)) {
          log.debug("ring changed", {
            pool: event.state.pool,
            server: event.state.address,
            weight: event.state.effectiveWeight,
            event: event.kind,
          });
        }
      });
      try {
        for (const config of model.l7.listeners) await open(config);
      } catch (err) {
        for (const l of listeners.values()) await l.drain(0);
        listeners.clear();
        state = "failed";
        detail = (err as Error).message;
        throw err;
      }
      state = "running";
      detail = undefined;
    },

    async apply(model: Model, diff: ModelDiff): Promise<void> {
      const poolsTouched = new Set([...diff.pools.changed, ...diff.servers.map((s) => s.pool)]);
      const poolsChanged = poolsTouched.size > 0 || diff.pools.added.length > 0 ||
        diff.pools.removed.length > 0;
      const l = diff.listeners;
      if (!poolsChanged && !l.added.length && !l.removed.length && !l.changed.length) return;
      pools = buildPools(model, pools, poolsTouched);
      const byName = new Map(model.l7.listeners.map((c) => [c.name, c]));
      for (const name of l.removed) {
        const old = listeners.get(name);
        if (!old) continue;
        listeners.delete(name);
        drainInBackground(old, old.state.config.timeouts.drain);
      }
      for (const [name, listener] of listeners) {
        const config = byName.get(name);
        if (!config) continue;
        if (l.changed.includes(name) && !sameSocket(listener.state.config, config)) {
          // free the socket first (the address may be the same), keep its clients
          listeners.delete(name);
          await listener.closeSocket();
          await open(config);
          drainInBackground(listener, listener.state.config.timeouts.drain);
        } else {
          listener.swap(routeState(config));
        }
      }
      for (const name of l.added) {
        const config = byName.get(name);
        if (config) await open(config);
      }
      const live = new Set<string>();
      for (const pool of pools.values()) for (const s of pool.servers) live.add(s.address);
      shared.upstreams.close(live);
      log.info("l7 applied", { listeners: listeners.size, pools: pools.size });
    },

    async stop(): Promise<void> {
      unsubscribe?.();
      unsubscribe = undefined;
      const all = [...listeners.values()];
      listeners.clear();
      await Promise.all(all.map((l) => l.drain(l.state.config.timeouts.drain)));
      await Promise.all([...draining]);
      shared.upstreams.close();
      shared.deadlines.close();
      // the epoll loop ends once its last socket is closed (another user may keep it)
      if (sockets === "epoll") await settled(tcpIdle(), 1000);
      state = "stopped";
    },

    status(): SubsystemStatus {
      return {
        state,
        ...(detail ? { detail } : {}),
        listeners: [...listeners.values()].map((l) => ({
          name: l.name,
          listen: l.state.config.listen.text,
          tls: l.state.config.tls !== undefined,
          clients: l.clients,
          inflight: l.inflight,
        })),
        pools: [...pools.values()].map((p) => ({
          name: p.name,
          usable: p.usable.length,
          servers: p.servers.length,
          inflight: p.inflight,
          ring_points: p.ring.positions.length,
        })),
        sockets,
        // response bodies moved socket to socket in the kernel (every listener)
        spliced_bytes: splicedBytes(),
        idle_server_connections: shared.upstreams.idle,
        server_connections_opened: shared.upstreams.opened,
      };
    },

    routes(app: Hono<AdminEnv>): void {
      mountRoute(app, { explain: (q) => this.explain(q) });
    },

    metrics(): string {
      const servers = [];
      for (const pool of pools.values()) {
        for (const s of pool.servers) {
          servers.push({ pool: pool.name, server: s.address, inflight: s.inflight });
        }
      }
      return metrics.render(servers);
    },

    explain(query: ExplainQuery & { listener?: string }): Explanation | string {
      const name = query.listener ?? [...listeners.keys()][0];
      if (name === undefined) return "no L7 listener is configured";
      const listener = listeners.get(name);
      if (!listener) {
        return `listener "${name}" does not exist; listeners: ${[...listeners.keys()].join(", ")}`;
      }
      return explain(listener.state, query);
    },

    address(name: string): Deno.NetAddr | undefined {
      return listeners.get(name)?.addr;
    },
  };
}
