/**
 * The pure core of the IPVS programmer: what the kernel should hold, computed from the
 * Model and the server states (config ⊕ health verdicts). No IO.
 * @module
 */
import type { Model } from "../../config/model.ts";
import type { ServiceConfig } from "../../config/schema.ts";
import type { ServerState } from "../../health/state.ts";
import {
  destText,
  type IpvsDest,
  type IpvsService,
  SCHED_FLAG_BITS,
  type ServiceKey,
  serviceKeyText,
  SVC_F,
} from "../../sys/ipvs.ts";

/** Looks a server's state up (ServerStates.get fits). */
export type StateLookup = (pool: string, address: string) => ServerState | undefined;

/** One service as Fulcrum wants it in the kernel. */
export interface DesiredService {
  /** The config name (`l4.services[].name`). */
  readonly name: string;
  /** Stable identity of the kernel entry ({@link keyOf}). */
  readonly key: string;
  readonly service: IpvsService;
  /** Destinations by {@link destKey}. */
  readonly dests: ReadonlyMap<string, IpvsDest>;
  /** The pool whose servers are the destinations. */
  readonly pool: string;
}

/** The identity of a kernel service: family plus fwmark, or protocol, address and port. */
export function keyOf(key: ServiceKey): string {
  return key.fwmark
    ? `${key.family}|fwmark|${key.fwmark}`
    : `${key.family}|${key.protocol}|${key.address}|${key.port}`;
}

/** The identity of a destination inside its service. */
export function destKey(dest: Pick<IpvsDest, "family" | "address" | "port">): string {
  return destText(dest);
}

/** Parses a dotted IPv4 netmask into its 32-bit value; undefined if it is not a mask. */
export function parseNetmask4(text: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  const value = ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
  const inverted = (~value) >>> 0;
  return (inverted & (inverted + 1)) === 0 ? value : undefined;
}

function netmaskOf(svc: ServiceConfig, family: 4 | 6): number {
  const text = svc.persistence?.netmask ?? (family === 4 ? "255.255.255.255" : "128");
  if (family === 4) {
    const mask = parseNetmask4(text);
    if (mask === undefined) {
      throw new Error(
        `l4 service "${svc.name}": persistence netmask "${text}" is not an IPv4 mask; write e.g. 255.255.255.0`,
      );
    }
    return mask;
  }
  if (text === "255.255.255.255") return 128;
  const prefix = Number(text.replace(/^\//, ""));
  if (!Number.isInteger(prefix) || prefix < 1 || prefix > 128) {
    throw new Error(
      `l4 service "${svc.name}": persistence netmask "${text}" is not an IPv6 prefix length; write e.g. 64`,
    );
  }
  return prefix;
}

/** The kernel service a configured service maps to (no destinations). */
export function serviceOf(svc: ServiceConfig, model: Model): IpvsService {
  let flags = 0;
  for (const f of svc.scheduler_flags) flags |= SCHED_FLAG_BITS[f] ?? 0;
  if (svc.persistence) flags |= SVC_F.PERSISTENT;
  const poolFamily = model.pools[svc.pool]?.servers[0]?.address.family ?? 4;
  const family = svc.vip?.family ?? poolFamily;
  const base = {
    family,
    protocol: svc.protocol,
    scheduler: svc.scheduler,
    flags,
    timeout: svc.persistence ? Math.max(1, Math.round(svc.persistence.timeout / 1000)) : 0,
    netmask: netmaskOf(svc, family),
  };
  if (svc.fwmark) return { ...base, protocol: "tcp", fwmark: svc.fwmark };
  if (!svc.vip) {
    throw new Error(`l4 service "${svc.name}" needs vip: ADDRESS:PORT or fwmark: NUMBER`);
  }
  return { ...base, address: svc.vip.host, port: svc.vip.port };
}

/** How a server's state turns into a destination weight; undefined = not in the kernel. */
export function destWeight(
  configured: number,
  state: ServerState | undefined,
  options: { onDown: ServiceConfig["on_down"] },
): number | undefined {
  const onDown = options.onDown;
  if (!state) return configured;
  if (state.admin === "disabled") return undefined;
  if (state.admin === "drain") return 0;
  if (state.health === "down") return onDown === "remove" ? undefined : 0;
  return state.effectiveWeight;
}

/**
 * Every configured service (or those named in `only`) with its destinations, weights
 * from the server states.
 * Backup servers get their weight only while no primary server has one. Throws an
 * operator-facing error naming the service for anything the kernel would refuse that
 * can be told in advance (duplicate service, unknown pool, family mismatch).
 */
export function desiredServices(
  model: Model,
  lookup: StateLookup,
  options: { onlyDefined?: boolean; only?: ReadonlySet<string> } = {},
): DesiredService[] {
  const out: DesiredService[] = [];
  const seen = new Map<string, string>();
  for (const svc of model.l4.services) {
    if (options.only && !options.only.has(svc.name)) continue;
    const service = serviceOf(svc, model);
    const key = keyOf(service);
    const other = seen.get(key);
    if (other !== undefined) {
      throw new Error(
        `l4 service "${svc.name}" duplicates service "${other}" (both are ${
          serviceKeyText(service)
        }); give each service its own vip, protocol or fwmark`,
      );
    }
    seen.set(key, svc.name);
    const pool = model.pools[svc.pool];
    if (!pool) {
      if (options.onlyDefined) continue;
      throw new Error(
        `l4 service "${svc.name}" uses pool "${svc.pool}", which is not defined; defined pools: ${
          Object.keys(model.pools).join(", ") || "none"
        }`,
      );
    }
    const primaries: IpvsDest[] = [];
    const backups: IpvsDest[] = [];
    for (const server of pool.servers) {
      const family = server.address.family;
      if (family !== service.family && svc.forward !== "tun") {
        throw new Error(
          `l4 service "${svc.name}" (${
            serviceKeyText(service)
          }) is IPv${service.family} but real server ${server.address.text} is IPv${family}; only forward: tun may mix families`,
        );
      }
      const weight = destWeight(server.weight, lookup(svc.pool, server.address.text), {
        onDown: svc.on_down,
      });
      if (weight === undefined) continue;
      const dest: IpvsDest = {
        family,
        address: server.address.host,
        port: server.address.port,
        forward: svc.forward,
        weight,
        upperThreshold: server.upper_threshold || server.max_conns,
        lowerThreshold: server.lower_threshold,
        ...(svc.forward === "tun"
          ? {
            tunnel: {
              type: svc.tunnel?.type ?? "ipip",
              port: svc.tunnel?.type && svc.tunnel.type !== "ipip" ? svc.tunnel.port ?? 0 : 0,
              csum: svc.tunnel?.type && svc.tunnel.type !== "ipip" ? svc.tunnel.csum : "none",
            },
          }
          : {}),
      };
      (server.backup ? backups : primaries).push(dest);
    }
    const primaryUp = primaries.some((d) => d.weight > 0);
    const dests = new Map<string, IpvsDest>();
    for (const d of primaries) dests.set(destKey(d), d);
    for (const d of backups) dests.set(destKey(d), primaryUp ? { ...d, weight: 0 } : d);
    out.push({ name: svc.name, key, service, dests, pool: svc.pool });
  }
  return out;
}
