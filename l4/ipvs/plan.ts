/**
 * The pure core's second half: the minimum set of kernel changes that turns what the
 * kernel holds into what is desired, and the inverse of each change (for rollback).
 * @module
 */
import { type IpvsDest, type IpvsService, type ServiceKey, SVC_F } from "../../sys/ipvs.ts";
import { type DesiredService, destKey, keyOf } from "./desired.ts";

/** A service as observed in the kernel, with its destinations. */
export interface Observed {
  readonly service: IpvsService;
  readonly dests: readonly IpvsDest[];
}

/** One kernel change. `name` is the owning service's config name (or `foreign`). */
export type Op =
  | { readonly kind: "newService"; readonly name: string; readonly service: IpvsService }
  | {
    readonly kind: "setService";
    readonly name: string;
    readonly service: IpvsService;
    readonly before: IpvsService;
  }
  | { readonly kind: "delService"; readonly name: string; readonly before: Observed }
  | {
    readonly kind: "newDest";
    readonly name: string;
    readonly key: ServiceKey;
    readonly dest: IpvsDest;
  }
  | {
    readonly kind: "setDest";
    readonly name: string;
    readonly key: ServiceKey;
    readonly dest: IpvsDest;
    readonly before: IpvsDest;
  }
  | {
    readonly kind: "delDest";
    readonly name: string;
    readonly key: ServiceKey;
    readonly before: IpvsDest;
  };

/** Options of {@link planChanges}. */
export interface PlanOptions {
  /** Keys of services Fulcrum put there (removed when no longer desired). */
  readonly owned: ReadonlySet<string>;
  /** Remove services nobody configured (`l4.foreign_services: remove`). */
  readonly removeForeign: boolean;
}

/** True when two services have the same settings (the kernel's HASHED bit ignored). */
export function sameService(a: IpvsService, b: IpvsService): boolean {
  return a.scheduler === b.scheduler &&
    (a.flags & ~SVC_F.HASHED) === (b.flags & ~SVC_F.HASHED) &&
    a.timeout === b.timeout &&
    (a.netmask >>> 0) === (b.netmask >>> 0);
}

/** True when two destinations have the same settings. */
export function sameDest(a: IpvsDest, b: IpvsDest): boolean {
  if (
    a.forward !== b.forward || a.weight !== b.weight ||
    a.upperThreshold !== b.upperThreshold || a.lowerThreshold !== b.lowerThreshold
  ) return false;
  if (a.forward !== "tun") return true;
  const ta = a.tunnel ?? { type: "ipip", port: 0, csum: "none" };
  const tb = b.tunnel ?? { type: "ipip", port: 0, csum: "none" };
  if (ta.type !== tb.type) return false;
  return ta.type === "ipip" || (ta.port === tb.port && ta.csum === tb.csum);
}

/**
 * The changes that move `observed` to `desired`, in a safe order: stale services
 * first, then per service its settings, removed, changed and added destinations.
 * Services neither desired nor owned are left alone unless `removeForeign`.
 */
export function planChanges(
  desired: readonly DesiredService[],
  observed: readonly Observed[],
  options: PlanOptions,
): Op[] {
  const ops: Op[] = [];
  const want = new Map(desired.map((d) => [d.key, d]));
  const have = new Map(observed.map((o) => [keyOf(o.service), o]));
  for (const [key, o] of have) {
    if (want.has(key)) continue;
    if (options.owned.has(key) || options.removeForeign) {
      ops.push({
        kind: "delService",
        name: options.owned.has(key) ? "owned" : "foreign",
        before: o,
      });
    }
  }
  for (const d of desired) {
    const o = have.get(d.key);
    if (!o) {
      ops.push({ kind: "newService", name: d.name, service: d.service });
      for (const dest of d.dests.values()) {
        ops.push({ kind: "newDest", name: d.name, key: d.service, dest });
      }
      continue;
    }
    if (!sameService(o.service, d.service)) {
      ops.push({ kind: "setService", name: d.name, service: d.service, before: o.service });
    }
    const current = new Map(o.dests.map((x) => [destKey(x), x]));
    for (const [k, before] of current) {
      if (!d.dests.has(k)) ops.push({ kind: "delDest", name: d.name, key: d.service, before });
    }
    for (const [k, dest] of d.dests) {
      const before = current.get(k);
      if (!before) ops.push({ kind: "newDest", name: d.name, key: d.service, dest });
      else if (!sameDest(before, dest)) {
        ops.push({ kind: "setDest", name: d.name, key: d.service, dest, before });
      }
    }
  }
  return ops;
}

/** The changes that undo `op` (applied in order). */
export function inverse(op: Op): Op[] {
  switch (op.kind) {
    case "newService":
      return [{
        kind: "delService",
        name: op.name,
        before: { service: op.service, dests: [] },
      }];
    case "setService":
      return [{ kind: "setService", name: op.name, service: op.before, before: op.service }];
    case "delService":
      return [
        { kind: "newService", name: op.name, service: op.before.service },
        ...op.before.dests.map((dest): Op => ({
          kind: "newDest",
          name: op.name,
          key: op.before.service,
          dest,
        })),
      ];
    case "newDest":
      return [{ kind: "delDest", name: op.name, key: op.key, before: op.dest }];
    case "setDest":
      return [{ kind: "setDest", name: op.name, key: op.key, dest: op.before, before: op.dest }];
    case "delDest":
      return [{ kind: "newDest", name: op.name, key: op.key, dest: op.before }];
  }
}

/** One line describing a change, for logs and `fulcrum plan`. */
export function describeOp(op: Op): string {
  const svc = (k: ServiceKey) =>
    k.fwmark
      ? `fwmark ${k.fwmark}`
      : `${k.protocol} ${k.family === 6 ? `[${k.address}]` : k.address}:${k.port}`;
  switch (op.kind) {
    case "newService":
      return `+ service ${op.name} ${svc(op.service)} ${op.service.scheduler}`;
    case "setService":
      return `~ service ${op.name} ${svc(op.service)} ${op.service.scheduler}`;
    case "delService":
      return `- service ${op.name} ${svc(op.before.service)}`;
    case "newDest":
      return `+ real server ${destKey(op.dest)} of ${op.name} weight ${op.dest.weight}`;
    case "setDest":
      return `~ real server ${
        destKey(op.dest)
      } of ${op.name} weight ${op.before.weight} -> ${op.dest.weight}`;
    case "delDest":
      return `- real server ${destKey(op.before)} of ${op.name}`;
  }
}
