/**
 * The kernel IPVS data plane: programs ip_vs over generic netlink from the Model,
 * the server states and the VRRP role, and keeps it right (periodic drift repair).
 * `createL4(deps, { ipvs: { available: ipvsAvailable, create: createIpvsDataplane } })`
 * picks it for `l4.dataplane: auto | ipvs`.
 * @module
 */
import type { ModelDiff } from "../../config/diff.ts";
import type { Model } from "../../config/model.ts";
import type { SubsystemDeps } from "../../subsystem.ts";
import { ffiAvailable } from "../../sys/libc.ts";
import {
  destText,
  IpvsClient,
  type IpvsDaemon,
  type IpvsDestEntry,
  type IpvsServiceEntry,
  type IpvsStats,
  writeDefense,
} from "../../sys/ipvs.ts";
import type { Counters, Dataplane, DestView, Rates, ServiceView } from "../dataplane.ts";
import { keyOf } from "./desired.ts";
import { observeAll, Reconciler } from "./reconciler.ts";

/** The pure core and the reconciler, for tests and tools. */
export { desiredServices, keyOf } from "./desired.ts";
/** The minimum change set between desired and observed tables. */
export { planChanges } from "./plan.ts";
/** The kernel-facing reconciler. */
export { Reconciler } from "./reconciler.ts";

async function tryModprobe(): Promise<void> {
  for (const bin of ["/sbin/modprobe", "/usr/sbin/modprobe", "modprobe"]) {
    try {
      const out = await new Deno.Command(bin, {
        args: ["-q", "ip_vs"],
        stdout: "null",
        stderr: "null",
      })
        .output();
      if (out.success) return;
    } catch { /* not there or not allowed */ }
  }
}

/**
 * True when the kernel has the "IPVS" generic netlink family. Tries `modprobe ip_vs`
 * once when it is missing. Never throws (no FFI permission or no root → false).
 */
export async function ipvsAvailable(): Promise<boolean> {
  if (Deno.build.os !== "linux" || !ffiAvailable()) return false;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const client = await IpvsClient.open();
      client.close();
      return true;
    } catch {
      if (attempt === 0) await tryModprobe();
    }
  }
  return false;
}

/** Options of {@link createIpvsDataplane}. */
export interface IpvsDataplaneOptions {
  /** How often the whole table is re-read and drift repaired (ms); 0 disables. Default 5000. */
  readonly resyncMs?: number;
  /** Remove owned services on stop (default true). */
  readonly removeOnStop?: boolean;
  /** Re-read every change and check the kernel took it (default true). */
  readonly verify?: boolean;
  /** Called with every netlink request (`write` = a change). */
  readonly onMessage?: (kind: "write" | "read", cmd: number) => void;
}

function counters(s: IpvsStats): Counters {
  return {
    conns: s.conns,
    inPkts: s.inPkts,
    outPkts: s.outPkts,
    inBytes: s.inBytes,
    outBytes: s.outBytes,
  };
}

function rates(s: IpvsStats): Rates {
  return { cps: s.cps, inpps: s.inpps, outpps: s.outpps, inbps: s.inbps, outbps: s.outbps };
}

/** The ipvsadm-style flag names of a service. */
export function flagNames(svc: IpvsServiceEntry): string[] {
  const out: string[] = [];
  if (svc.flags & 0x1) out.push("persistent");
  if (svc.flags & 0x4) out.push("ops");
  const prefix = svc.scheduler === "mh" ? "mh" : "sh";
  if (svc.flags & 0x8) out.push(`${prefix}-fallback`);
  if (svc.flags & 0x10) out.push(`${prefix}-port`);
  return out;
}

function netmaskText(svc: IpvsServiceEntry): string {
  if (svc.family === 6) return String(svc.netmask);
  const m = svc.netmask >>> 0;
  return [m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255].join(".");
}

function view(name: string, svc: IpvsServiceEntry, dests: readonly IpvsDestEntry[]): ServiceView {
  return {
    name,
    protocol: svc.protocol,
    ...(svc.fwmark ? { fwmark: svc.fwmark } : {
      vip: svc.family === 6 ? `[${svc.address}]:${svc.port}` : `${svc.address}:${svc.port}`,
    }),
    scheduler: svc.scheduler,
    flags: flagNames(svc),
    ...(svc.flags & 0x1
      ? { persistence: { timeout: svc.timeout, netmask: netmaskText(svc) } }
      : {}),
    dests: dests.map((d): DestView => ({
      address: destText(d),
      forward: d.forward,
      weight: d.weight,
      activeConns: d.activeConns,
      inactiveConns: d.inactiveConns,
      persistentConns: d.persistentConns,
      stats: counters(d.stats),
      rates: rates(d.stats),
    })),
    stats: counters(svc.stats),
    rates: rates(svc.stats),
  };
}

/** The sync daemon the model and the VRRP role ask for, if any. */
export function wantedDaemon(model: Model, isMaster: boolean): IpvsDaemon | undefined {
  const sd = model.l4.sync_daemon;
  if (!sd) return undefined;
  const vrrpInUse = model.vrrp.enabled && model.vrrp.instances.length > 0;
  return {
    state: !vrrpInUse || isMaster ? "master" : "backup",
    interface: sd.interface,
    syncId: sd.sync_id,
  };
}

/**
 * Creates the IPVS data plane (kind "ipvs"). `start` throws a clear error when the
 * kernel has no IPVS, naming `l4.dataplane: userspace` as the way out.
 */
export function createIpvsDataplane(
  deps: SubsystemDeps,
  options: IpvsDataplaneOptions = {},
): Dataplane {
  const log = deps.log;
  let client: IpvsClient | undefined;
  let reconciler: Reconciler | undefined;
  let model: Model | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let unsubscribeRoles: (() => void) | undefined;
  let daemon: string[] = [];
  let familyId = 0;
  const messages = { write: 0, read: 0 };
  let lastResync = 0;

  async function globals(m: Model, keys: readonly string[]): Promise<void> {
    if (!reconciler) return;
    if (keys.includes("defense")) {
      const d = m.l4.defense;
      const changed = await writeDefense({
        drop_entry: d.drop_entry,
        drop_packet: d.drop_packet,
        secure_tcp: d.secure_tcp,
        amemthresh: d.amemthresh,
      });
      if (changed.length) log.info("ipvs defense sysctls set", { changed: changed.join(",") });
    }
    if (keys.includes("timeouts") && m.l4.timeouts) {
      const t = m.l4.timeouts;
      const changed = await reconciler.syncTimeouts({
        tcp: Math.round(t.tcp / 1000),
        tcpFin: Math.round(t.tcp_fin / 1000),
        udp: Math.round(t.udp / 1000),
      });
      if (changed) log.info("ipvs timeouts set");
    }
    if (keys.includes("sync_daemon")) await syncDaemon(m);
  }

  async function syncDaemon(m: Model): Promise<void> {
    if (!reconciler) return;
    const want = wantedDaemon(m, deps.roles.anyMaster());
    if (!want && daemon.length === 0) return;
    const actions = await reconciler.syncDaemon(want);
    daemon = want ? [want.state, want.interface, String(want.syncId)] : [];
    for (const a of actions) log.info("ipvs sync daemon", { action: a });
  }

  async function resync(): Promise<void> {
    if (!reconciler || !model) return;
    try {
      await reconciler.sync(model, { full: true, repair: true });
      lastResync = Date.now();
    } catch (error) {
      log.warn("ipvs resync failed", { error: (error as Error).message });
    }
  }

  return {
    kind: "ipvs",
    async start(first: Model): Promise<void> {
      try {
        client = await IpvsClient.open({
          onMessage: (kind, cmd) => {
            messages[kind]++;
            options.onMessage?.(kind, cmd);
          },
        });
      } catch (error) {
        throw new Error(
          `l4.dataplane is ipvs but IPVS cannot be used: ${(error as Error).message}`,
        );
      }
      familyId = client.familyId;
      reconciler = new Reconciler(client, {
        log,
        lookup: (pool, address) => deps.states.get(pool, address),
        verify: options.verify,
      });
      try {
        await reconciler.sync(first, { full: true });
        await globals(first, ["defense", "timeouts", "sync_daemon"]);
      } catch (error) {
        client.close();
        client = undefined;
        reconciler = undefined;
        throw error;
      }
      model = first;
      log.info("l4 data plane: kernel IPVS", {
        family_id: familyId,
        services: reconciler.desired.length,
      });
      unsubscribeRoles = deps.roles.subscribe(() => {
        if (model) {
          void syncDaemon(model).catch((e) => log.warn("ipvs sync daemon", { error: String(e) }));
        }
      });
      const every = options.resyncMs ?? 5000;
      if (every > 0) timer = setInterval(() => void resync(), every);
    },
    async apply(next: Model, diff: ModelDiff): Promise<void> {
      if (!reconciler) throw new Error("the IPVS data plane is not started; call start first");
      const pools = new Set([...diff.pools.changed, ...diff.pools.added, ...diff.pools.removed]);
      const affected = new Set([
        ...diff.services.changed,
        ...next.l4.services.filter((svc) => pools.has(svc.pool)).map((svc) => svc.name),
      ]);
      const identity = (m: Model | undefined, name: string) => {
        const svc = m?.l4.services.find((x) => x.name === name);
        return svc ? `${svc.protocol} ${svc.vip?.text ?? ""} ${svc.fwmark ?? ""}` : "";
      };
      const structural = diff.services.added.length > 0 || diff.services.removed.length > 0 ||
        diff.l4Globals.includes("foreign_services") ||
        diff.services.changed.some((name) => identity(model, name) !== identity(next, name));
      if (structural) await reconciler.sync(next);
      else if (affected.size) await reconciler.sync(next, { only: affected });
      model = next;
      await globals(next, diff.l4Globals);
    },
    async serverChanged(pool: string): Promise<void> {
      if (!reconciler || !model) return;
      const names = new Set(model.l4.services.filter((s) => s.pool === pool).map((s) => s.name));
      if (names.size) await reconciler.sync(model, { only: names });
    },
    async stop(): Promise<void> {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      unsubscribeRoles?.();
      if (reconciler && (options.removeOnStop ?? true)) {
        await reconciler.removeOwned();
        if (daemon.length) await reconciler.syncDaemon(undefined).catch(() => undefined);
      }
      client?.close();
      client = undefined;
      reconciler = undefined;
    },
    async services(): Promise<readonly ServiceView[]> {
      if (!client || !reconciler) return [];
      const names = new Map(reconciler.desired.map((d) => [d.key, d.name]));
      const all = await observeAll(client);
      return all.flatMap((o) => {
        const name = names.get(keyOf(o.service));
        return name ? [view(name, o.service, o.dests)] : [];
      });
    },
    status(): Record<string, unknown> {
      return {
        dataplane: "ipvs",
        familyId,
        services: reconciler?.desired.length ?? 0,
        owned: reconciler?.owned.size ?? 0,
        messages: { ...messages },
        ...(reconciler ? { counters: { ...reconciler.counters } } : {}),
        syncDaemon: daemon.length
          ? { state: daemon[0], interface: daemon[1], syncId: Number(daemon[2]) }
          : null,
        lastResync: lastResync ? new Date(lastResync).toISOString() : null,
        ...(reconciler?.lastError ? { lastError: reconciler.lastError } : {}),
      };
    },
  };
}
