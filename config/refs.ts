/**
 * Checks that span the file: references between sections, uniqueness, and rules the
 * schema alone cannot express. Each problem carries the path of the offending value
 * so the loader can point at its line and column.
 * @module
 */
import { ipFamily, isLoopback, isWildcard } from "./address.ts";
import type { Config } from "./schema.ts";

/** A problem at a path of the parsed document. */
export interface PathIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
  /** Point at the key of the last path step instead of its value. */
  readonly key?: boolean;
  /** Sections besides the path's own whose values this check relies on. */
  readonly needs?: readonly string[];
}

/** Options of {@link crossCheck}. */
export interface CrossCheckOptions {
  /**
   * The addresses configured on this host, for the "VIP is local" check. Defaults to
   * `Deno.networkInterfaces()`; when that is not permitted the check is skipped.
   */
  localAddresses?: () => readonly string[] | undefined;
}

/**
 * The addresses configured on this host (`Deno.networkInterfaces()`), or undefined
 * when that is not permitted: the default of {@link CrossCheckOptions.localAddresses}.
 */
export function hostAddresses(): readonly string[] | undefined {
  try {
    return Deno.networkInterfaces().map((i) => i.address);
  } catch {
    return undefined;
  }
}

/** A path as an operator reads it: `l7.listeners[0].rules`. */
export function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`)
    .join("");
}

function listOf(names: Iterable<string>): string {
  const all = [...names];
  return all.length ? all.join(", ") : "(none)";
}

/**
 * Runs every cross-reference check on a schema-valid config (or one assembled from
 * the sections that are valid; see `needs` to drop what relied on the others).
 */
export function crossCheck(config: Config, options: CrossCheckOptions = {}): PathIssue[] {
  const issues: PathIssue[] = [];
  const pools = new Set(Object.keys(config.pools));
  const poolRef = (name: string, path: (string | number)[]) => {
    if (!pools.has(name)) {
      issues.push({
        path,
        message: `pool "${name}" is not defined; defined pools: ${listOf(pools)}`,
        needs: ["pools"],
      });
    }
  };
  const unique = (items: readonly { name: string }[], base: (string | number)[], what: string) => {
    const seen = new Map<string, number>();
    items.forEach((item, i) => {
      const first = seen.get(item.name);
      if (first !== undefined) {
        issues.push({
          path: [...base, i, "name"],
          message: `${what} "${item.name}" is defined twice (also at ${
            pathText(base)
          }[${first}]); give each a unique name`,
        });
      } else seen.set(item.name, i);
    });
  };

  // admin
  if (!isLoopback(config.admin.listen.host) && !config.admin.token_file) {
    issues.push({
      path: ["admin", "listen"],
      message:
        `admin listens on ${config.admin.listen.text} without a token; set admin.token_file or listen on 127.0.0.1`,
    });
  }

  // pools
  for (const [name, pool] of Object.entries(config.pools)) {
    const seen = new Map<string, number>();
    pool.servers.forEach((server, i) => {
      const first = seen.get(server.address.text);
      if (first !== undefined) {
        issues.push({
          path: ["pools", name, "servers", i, "address"],
          message: `server ${server.address.text} is listed twice in pool "${name}"; remove one`,
        });
      } else seen.set(server.address.text, i);
      if (server.lower_threshold > server.upper_threshold && server.upper_threshold > 0) {
        issues.push({
          path: ["pools", name, "servers", i, "lower_threshold"],
          message: "lower_threshold must not exceed upper_threshold",
        });
      }
    });
  }

  // listening sockets: admin, l7 listeners, l4 userspace services
  const sockets: { proto: string; host: string; port: number; path: (string | number)[] }[] = [
    { proto: "tcp", ...config.admin.listen, path: ["admin", "listen"] },
  ];
  const claim = (proto: string, host: string, port: number, path: (string | number)[]) => {
    const clash = sockets.find((s) =>
      s.proto === proto && s.port === port &&
      (s.host === host || isWildcard(s.host) || isWildcard(host))
    );
    if (clash) {
      issues.push({
        path,
        message: `${proto} ${host}:${port} is already used by ${
          pathText(clash.path)
        }; pick another port`,
      });
    } else sockets.push({ proto, host, port, path });
  };

  // l7
  unique(config.l7.listeners, ["l7", "listeners"], "listener");
  config.l7.listeners.forEach((listener, li) => {
    const base = ["l7", "listeners", li];
    claim("tcp", listener.listen.host, listener.listen.port, [...base, "listen"]);
    let catchAll: number | undefined;
    listener.rules.forEach((rule, ri) => {
      poolRef(rule.pool, [...base, "rules", ri, "pool"]);
      if (catchAll !== undefined) {
        issues.push({
          path: [...base, "rules", ri],
          message:
            `rule ${ri} is unreachable: rule ${catchAll} has no match and catches every request; move the default rule last`,
        });
      }
      if (!rule.match || Object.keys(rule.match).length === 0) catchAll ??= ri;
      if (rule.balance?.hash && rule.balance.scheduler) {
        issues.push({
          path: [...base, "rules", ri, "balance"],
          message: "balance takes either hash or scheduler, not both",
        });
      }
    });
    if (listener.balance.hash && listener.balance.scheduler) {
      issues.push({
        path: [...base, "balance"],
        message: "balance takes either hash or scheduler, not both",
      });
    }
  });

  // vrrp (before l4: VIPs come from here)
  const vrrpVips = new Set<string>();
  const vrrpOn = config.vrrp.enabled;
  unique(config.vrrp.instances, ["vrrp", "instances"], "VRRP instance");
  const vrids = new Map<string, number>();
  config.vrrp.instances.forEach((inst, i) => {
    const base = ["vrrp", "instances", i];
    for (const vip of inst.virtual_ipaddress) vrrpVips.add(vip.address);
    const families = new Set(inst.virtual_ipaddress.map((v) => v.family));
    if (families.size > 1) {
      issues.push({
        path: [...base, "virtual_ipaddress"],
        message:
          "an instance's virtual addresses must all be IPv4 or all IPv6; split them into two instances",
      });
    }
    const family = inst.virtual_ipaddress[0]?.family ?? 4;
    const key = `${inst.interface}/${family}/${inst.vrid}`;
    const first = vrids.get(key);
    if (first !== undefined) {
      issues.push({
        path: [...base, "vrid"],
        message:
          `vrid ${inst.vrid} is already used on ${inst.interface} by vrrp.instances[${first}]; VRIDs must be unique per interface`,
      });
    } else vrids.set(key, i);
    if (inst.priority === 255 && !inst.address_owner) {
      issues.push({
        path: [...base, "priority"],
        message:
          "priority 255 is reserved for the address owner; use 1-254, or set address_owner: true if this box owns the virtual addresses",
      });
    }
    if (inst.address_owner && inst.priority !== 255) {
      issues.push({
        path: [...base, "address_owner"],
        message:
          "an address owner always runs at priority 255; set priority: 255 or remove address_owner",
      });
    }
    if (inst.version === 2) {
      const secs = inst.advert_interval / 1000;
      if (!Number.isInteger(secs) || secs < 1 || secs > 255) {
        issues.push({
          path: [...base, "advert_interval"],
          message:
            "VRRPv2 advertises in whole seconds from 1s to 255s; use version: 3 for sub-second intervals",
        });
      }
      if (family === 6) {
        issues.push({
          path: [...base, "version"],
          message: "VRRPv2 carries IPv4 only; use version: 3 for IPv6",
        });
      }
    } else {
      const cs = inst.advert_interval / 10;
      if (!Number.isInteger(cs) || cs < 1 || cs > 4095) {
        issues.push({
          path: [...base, "advert_interval"],
          message:
            "VRRPv3 advertises in centiseconds from 10ms to 40.95s; round to a multiple of 10ms",
        });
      }
      if (inst.auth) {
        issues.push({
          path: [...base, "auth"],
          key: true,
          message:
            "VRRPv3 has no authentication (RFC 5798 removed it); remove auth or use version: 2",
        });
      }
    }
    inst.unicast_peers.forEach((peer, pi) => {
      if (ipFamily(peer) !== family) {
        issues.push({
          path: [...base, "unicast_peers", pi],
          message: `unicast peer ${peer} is not IPv${family} like the instance's virtual addresses`,
        });
      }
    });
    inst.track.pools.forEach((t, ti) => {
      const name = typeof t === "string" ? t : t.pool;
      poolRef(name, [...base, "track", "pools", ti, ...(typeof t === "string" ? [] : ["pool"])]);
    });
  });
  const grouped = new Map<string, string>();
  const instanceNames = new Set(config.vrrp.instances.map((i) => i.name));
  unique(config.vrrp.sync_groups, ["vrrp", "sync_groups"], "sync group");
  config.vrrp.sync_groups.forEach((group, gi) => {
    group.instances.forEach((name, ii) => {
      const path = ["vrrp", "sync_groups", gi, "instances", ii];
      if (!instanceNames.has(name)) {
        issues.push({
          path,
          message: `VRRP instance "${name}" is not defined; defined instances: ${
            listOf(instanceNames)
          }`,
        });
      } else if (grouped.has(name)) {
        issues.push({
          path,
          message: `instance "${name}" is already in sync group "${
            grouped.get(name)
          }"; an instance belongs to one group`,
        });
      } else grouped.set(name, group.name);
    });
  });

  // l4
  unique(config.l4.services, ["l4", "services"], "service");
  const locals = (options.localAddresses ?? hostAddresses)();
  config.l4.services.forEach((svc, si) => {
    const base = ["l4", "services", si];
    poolRef(svc.pool, [...base, "pool"]);
    if (!svc.vip === (svc.fwmark === undefined)) {
      issues.push({
        path: [...base, "name"],
        message: `service "${svc.name}" needs exactly one of vip: ADDRESS:PORT or fwmark: N`,
      });
    }
    if (svc.vip) {
      claim(svc.protocol, svc.vip.host, svc.vip.port, [...base, "vip"]);
      const host = svc.vip.host;
      const local = isLoopback(host) || isWildcard(host) || (vrrpOn && vrrpVips.has(host)) ||
        locals === undefined || locals.includes(host);
      if (!local) {
        issues.push({
          path: [...base, "vip"],
          needs: ["vrrp"],
          message:
            `VIP ${host} is neither a virtual_ipaddress of a VRRP instance nor an address of this host; add it to a VRRP instance or use a local address`,
        });
      }
      const pool = config.pools[svc.pool];
      if (pool && svc.forward !== "nat") {
        pool.servers.forEach((server, i) => {
          if (server.address.port !== svc.vip!.port) {
            issues.push({
              path: ["pools", svc.pool, "servers", i, "address"],
              message:
                `service "${svc.name}" forwards by ${svc.forward}, which cannot change the port: use port ${
                  svc.vip!.port
                } here or forward: nat`,
            });
          }
        });
      }
    }
    for (const [fi, flag] of svc.scheduler_flags.entries()) {
      const owner = flag.split("-")[0];
      if (owner !== svc.scheduler) {
        issues.push({
          path: [...base, "scheduler_flags", fi],
          message: `flag ${flag} applies to the ${owner} scheduler, not ${svc.scheduler}`,
        });
      }
    }
    if (svc.tunnel && svc.forward !== "tun") {
      issues.push({
        path: [...base, "tunnel"],
        key: true,
        message: "tunnel applies only to forward: tun; remove it or set forward: tun",
      });
    }
    if (svc.persistence) {
      const family = svc.vip?.family ?? 4;
      const mask = svc.persistence.netmask;
      const ok = family === 4 ? isContiguousMask(mask) : /^\/?(\d{1,3})$/.test(mask) &&
        Number(mask.replace("/", "")) <= 128;
      if (!ok) {
        issues.push({
          path: [...base, "persistence", "netmask"],
          message: family === 4
            ? `netmask "${mask}" is not a contiguous IPv4 mask; write e.g. 255.255.255.0`
            : `netmask "${mask}" must be an IPv6 prefix length such as 64`,
        });
      }
    }
  });
  if (config.l4.sync_daemon && !config.vrrp.instances.length) {
    issues.push({
      path: ["l4", "sync_daemon"],
      key: true,
      needs: ["vrrp"],
      message:
        "the sync daemon follows the VRRP role; configure a VRRP instance or remove sync_daemon",
    });
  }
  return issues;
}

function isContiguousMask(mask: string): boolean {
  if (ipFamily(mask) !== 4) return false;
  const n = mask.split(".").reduce((acc, part) => (acc << 8) + Number(part), 0) >>> 0;
  const inverted = ~n >>> 0;
  return (inverted & (inverted + 1)) === 0;
}
