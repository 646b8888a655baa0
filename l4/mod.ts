/**
 * The L4 director subsystem: virtual services over real servers with the kernel's
 * schedulers, on one of two data planes: the kernel's IPVS (l4/ipvs/, injected by the
 * appliance) or the userspace TCP/UDP proxy (l4/proxy/). `l4.dataplane: auto` takes
 * IPVS when the kernel has it, else userspace; `ipvs` fails clearly without it.
 * Server state changes (health, weight, admin) reach the plane as they happen.
 *
 * ```ts
 * const l4 = createL4(deps, { ipvs: { available: ipvsAvailable, create: createIpvsDataplane } });
 * await l4.start(model);
 * ```
 * @module
 */
import type { Hono } from "hono";
import type { Model } from "../config/model.ts";
import type { ModelDiff } from "../config/diff.ts";
import type { AdminEnv, Subsystem, SubsystemDeps, SubsystemStatus } from "../subsystem.ts";
import type { Dataplane, ServiceView } from "./dataplane.ts";
import type { DropCounts } from "./defense.ts";
import { createUserspacePlane } from "./proxy/mod.ts";
import { mountServiceRoutes, servicesMetrics, type SpliceCounts } from "../admin/services.ts";

export { createScheduler } from "./sched/mod.ts";
export type { PickContext, SchedDest, Scheduler } from "./sched/mod.ts";
export { statusCommand } from "./cli.ts";

/** On stop, how long userspace connections may finish before they are closed. */
export const DRAIN_MS = 3000;

/** How the appliance offers the kernel plane. */
export interface IpvsProvider {
  /** Whether this kernel has IPVS (genetlink family "IPVS" present or loadable). */
  available(): Promise<boolean>;
  /** Creates the kernel plane. */
  create(deps: SubsystemDeps): Dataplane;
}

/** Options of {@link createL4}. */
export interface L4Options {
  /** The kernel plane; without it only the userspace plane exists. */
  readonly ipvs?: IpvsProvider;
}

/** The L4 subsystem plus what admin and tests read. */
export interface L4Subsystem extends Subsystem {
  /** The data plane in use, once started. */
  dataplane(): Dataplane | undefined;
  /** Services as the plane has them now. */
  services(): readonly ServiceView[] | Promise<readonly ServiceView[]>;
}

interface Choice {
  readonly kind: "ipvs" | "userspace";
  readonly reason: string;
}

async function choose(model: Model, options: L4Options): Promise<Choice> {
  const wanted = model.l4.dataplane;
  if (wanted === "userspace") return { kind: "userspace", reason: "l4.dataplane: userspace" };
  const available = options.ipvs ? await options.ipvs.available().catch(() => false) : false;
  if (wanted === "ipvs") {
    if (!available) {
      throw new Error(
        "l4.dataplane is ipvs but this kernel has no IPVS (the ip_vs module is missing or " +
          "cannot be loaded); load ip_vs, or set l4.dataplane: userspace (or auto)",
      );
    }
    return { kind: "ipvs", reason: "l4.dataplane: ipvs" };
  }
  return available
    ? { kind: "ipvs", reason: "auto: the kernel has IPVS" }
    : { kind: "userspace", reason: "auto: the kernel has no IPVS" };
}

/** Creates the L4 subsystem. */
export function createL4(deps: SubsystemDeps, options: L4Options = {}): L4Subsystem {
  let plane: Dataplane | undefined;
  let choice: Choice | undefined;
  let state: SubsystemStatus["state"] = "stopped";
  let detail: string | undefined;
  let unsubscribe: (() => void) | undefined;
  let lastViews: readonly ServiceView[] = [];

  function make(kind: Choice["kind"]): Dataplane {
    if (kind === "ipvs" && options.ipvs) return options.ipvs.create(deps);
    return createUserspacePlane({ states: deps.states, log: deps.log }, { drainMs: DRAIN_MS });
  }

  async function open(model: Model): Promise<void> {
    choice = await choose(model, options);
    const next = make(choice.kind);
    await next.start(model);
    plane = next;
    deps.log.info("l4 data plane chosen", { dataplane: choice.kind, reason: choice.reason });
  }

  function services(): readonly ServiceView[] | Promise<readonly ServiceView[]> {
    if (!plane) return [];
    const result = plane.services();
    if (result instanceof Promise) {
      return result.then((views) => (lastViews = views));
    }
    lastViews = result;
    return result;
  }

  return {
    name: "l4",
    dataplane: () => plane,
    services,
    async start(model) {
      state = "starting";
      try {
        await open(model);
      } catch (err) {
        state = "failed";
        detail = err instanceof Error ? err.message : String(err);
        throw err;
      }
      unsubscribe = deps.states.subscribe((event) => {
        const p = plane;
        if (!p) return;
        try {
          const done = p.serverChanged(event.state.pool, event.state.address);
          if (done instanceof Promise) {
            done.catch((err) =>
              deps.log.warn("l4 could not apply a server change", {
                server: `${event.state.pool}/${event.state.address}`,
                err: String(err),
              })
            );
          }
        } catch (err) {
          deps.log.warn("l4 could not apply a server change", { err: String(err) });
        }
      });
      state = "running";
      detail = undefined;
    },
    async apply(model: Model, diff: ModelDiff) {
      if (!plane) return await this.start(model);
      if (diff.l4Globals.includes("dataplane")) {
        const next = await choose(model, options);
        if (next.kind !== plane.kind) {
          deps.log.info("l4 data plane changes", { from: plane.kind, to: next.kind });
          await plane.stop();
          plane = undefined;
          await open(model);
          return;
        }
        choice = next;
      }
      await plane.apply(model, diff);
    },
    async stop() {
      unsubscribe?.();
      unsubscribe = undefined;
      const p = plane;
      plane = undefined;
      if (p) await p.stop();
      state = "stopped";
    },
    status(): SubsystemStatus {
      return {
        state,
        ...(detail ? { detail } : {}),
        dataplane: choice?.kind,
        reason: choice?.reason,
        ...(plane ? plane.status() : {}),
      };
    },
    routes(app: Hono<AdminEnv>) {
      mountServiceRoutes(app, { services });
    },
    metrics(): string {
      const result = services();
      const views = result instanceof Promise ? lastViews : result;
      const p = plane as
        | (Dataplane & { drops?: () => DropCounts; splice?: () => SpliceCounts })
        | undefined;
      return servicesMetrics(views, { drops: p?.drops?.(), splice: p?.splice?.() });
    },
  };
}
