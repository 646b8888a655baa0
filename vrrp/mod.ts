/**
 * The VRRP subsystem: one {@link Instance} per configured instance, sync groups that
 * move their members together, the admin routes and the metrics.
 *
 * ```ts
 * const vrrp = createVrrp({ states, roles, log });
 * await vrrp.start(model);
 * ```
 * @module
 */
import type { Hono } from "hono";
import type { ModelDiff } from "../config/diff.ts";
import type { Model } from "../config/model.ts";
import type { AdminEnv, Subsystem, SubsystemDeps, SubsystemStatus } from "../subsystem.ts";
import { setThreadNice } from "../sys/libc.ts";
import { Rtnl } from "../sys/rtnl.ts";
import { mountVrrpRoutes, vrrpMetrics } from "../admin/vrrp.ts";
import { Instance, type InstanceStatus } from "./instance.ts";
import type { Role } from "./role.ts";

export { Instance } from "./instance.ts";
export type { InstanceStatus } from "./instance.ts";

/** The VRRP subsystem with access to its instances (admin routes, tests). */
export interface VrrpSubsystem extends Subsystem {
  /** The running instances by name. */
  instances(): ReadonlyMap<string, Instance>;
  /** Status of every instance. */
  list(): InstanceStatus[];
}

/** Creates the VRRP subsystem; nothing happens until `start`. */
export function createVrrp(deps: SubsystemDeps): VrrpSubsystem {
  const log = deps.log;
  const instances = new Map<string, Instance>();
  let model: Model | undefined;
  let rtnl: Rtnl | undefined;
  let state: SubsystemStatus["state"] = "stopped";
  let detail = "";

  function groupsOf(name: string) {
    return (model?.vrrp.sync_groups ?? []).filter((g) => g.instances.includes(name));
  }

  function onRole(instance: Instance, role: Role, fromSync: boolean): void {
    if (fromSync || role === "init") return;
    for (const group of groupsOf(instance.name)) {
      if (group.notify) instance.notifyGroup(group.notify, role, group.name);
      for (const member of group.instances) {
        if (member === instance.name) continue;
        instances.get(member)?.sync(role as "master" | "backup" | "fault", group.name);
      }
    }
  }

  /**
   * Adverts are sent from the main thread's timers: on a loaded box a late master
   * advert is a false failover on the backup. Like keepalived's vrrp_priority, run
   * the main thread at nice -10 (FULCRUM_VRRP_NICE overrides; 0 leaves it alone).
   */
  function raisePriority(): void {
    let nice = -10;
    try {
      const env = Deno.env.get("FULCRUM_VRRP_NICE");
      if (env !== undefined && /^-?\d+$/.test(env)) nice = Number(env);
    } catch { /* no env permission: keep the default */ }
    if (nice === 0) return;
    try {
      setThreadNice(nice);
      log.info("vrrp: main thread scheduling priority raised so adverts go out on time", { nice });
    } catch (error) {
      log.warn("vrrp: cannot raise the scheduling priority; adverts may be late on a busy box", {
        error: (error as Error).message,
      });
    }
  }

  async function startInstance(m: Model, name: string): Promise<void> {
    const config = m.vrrp.instances.find((i) => i.name === name)!;
    const instance: Instance = new Instance(config, {
      states: deps.states,
      roles: deps.roles,
      log,
      rtnl: rtnl!,
      siblings: (): Set<number> =>
        new Set(
          [...instances.values()]
            .filter((i) => i !== instance && i.config.interface === config.interface)
            .map((i) => i.config.vrid),
        ),
      onRole,
    });
    instances.set(name, instance);
    try {
      await instance.start();
    } catch (error) {
      instances.delete(name);
      throw error;
    }
  }

  async function startAll(m: Model): Promise<void> {
    if (!m.vrrp.enabled || !m.vrrp.instances.length) {
      state = "disabled";
      detail = m.vrrp.enabled ? "no instances configured" : "vrrp.enabled is false";
      return;
    }
    rtnl ??= new Rtnl();
    raisePriority();
    state = "starting";
    for (const i of m.vrrp.instances) await startInstance(m, i.name);
    state = "running";
    detail = "";
  }

  async function stopAll(): Promise<void> {
    await Promise.all([...instances.values()].map((i) => i.stop()));
    instances.clear();
    rtnl?.close();
    rtnl = undefined;
  }

  const subsystem: VrrpSubsystem = {
    name: "vrrp",

    async start(m: Model): Promise<void> {
      model = m;
      try {
        await startAll(m);
      } catch (error) {
        state = "failed";
        detail = (error as Error).message;
        await stopAll();
        throw error;
      }
    },

    async apply(m: Model, diff: ModelDiff): Promise<void> {
      const before = model;
      model = m;
      if (!before) return subsystem.start(m);
      const untouched = !diff.vrrpEnabled && !diff.syncGroups && !diff.instances.added.length &&
        !diff.instances.removed.length && !diff.instances.changed.length;
      if (untouched) return;
      if (diff.vrrpEnabled || !m.vrrp.enabled || !m.vrrp.instances.length || !rtnl) {
        await stopAll();
        return startAll(m);
      }
      // changes to priority, preemption, tracking, notify or GARP apply in place; others
      // (and removed instances) stop gracefully with priority 0, changed ones restart
      const restart: string[] = [];
      for (const name of diff.instances.changed) {
        const config = m.vrrp.instances.find((i) => i.name === name)!;
        const running = instances.get(name);
        if (!running || !(await running.reconfigure(config))) restart.push(name);
      }
      for (const name of [...diff.instances.removed, ...restart]) {
        await instances.get(name)?.stop();
        instances.delete(name);
      }
      for (const name of [...restart, ...diff.instances.added]) {
        await startInstance(m, name);
      }
      state = "running";
    },

    async stop(): Promise<void> {
      await stopAll();
      state = "stopped";
    },

    status(): SubsystemStatus {
      const list = subsystem.list();
      const masters = list.filter((i) => i.state === "master").map((i) => i.name);
      const faults = list.filter((i) => i.state === "fault").map((i) => i.name);
      return {
        state: state === "running" && faults.length ? "degraded" : state,
        detail: faults.length ? `in fault: ${faults.join(", ")}` : detail || undefined,
        instances: list.length,
        masters,
      };
    },

    routes(app: Hono<AdminEnv>): void {
      mountVrrpRoutes(app, subsystem);
    },

    metrics(): string {
      return vrrpMetrics([...instances.values()]);
    },

    instances(): ReadonlyMap<string, Instance> {
      return instances;
    },

    list(): InstanceStatus[] {
      return [...instances.values()].map((i) => i.status());
    },
  };
  return subsystem;
}
