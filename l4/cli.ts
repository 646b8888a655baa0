/**
 * `fulcrum status l4`: fetches `/api/v1/services` from a running appliance and prints
 * it the way `ipvsadm -Ln` does (with `--stats` or `--rate` like ipvsadm, `--json` raw).
 * @module
 */
import type { ServiceView } from "./dataplane.ts";

/** Columns to print besides the plain table. */
export type TableMode = "plain" | "stats" | "rate";

const FORWARD: Record<string, string> = {
  nat: "Masq",
  dr: "Route",
  tun: "Tunnel",
  local: "Local",
};

function pad(text: string, width: number): string {
  return text.length >= width ? text + " " : text + " ".repeat(width - text.length);
}

function right(value: number | string, width: number): string {
  const text = String(value);
  return text.length >= width ? " " + text : " ".repeat(width - text.length) + text;
}

/** ipvsadm's short numbers: K, M, G above 10⁵ (as `ipvsadm -L --stats` without `-n --exact`). */
export function shortNumber(n: number): string {
  if (n < 100_000) return String(n);
  if (n < 100_000_000) return `${Math.floor(n / 1000)}K`;
  if (n < 100_000_000_000) return `${Math.floor(n / 1_000_000)}M`;
  return `${Math.floor(n / 1_000_000_000)}G`;
}

function serviceHead(v: ServiceView): string {
  const proto = v.fwmark !== undefined ? "FWM" : v.protocol.toUpperCase();
  const where = v.fwmark !== undefined ? String(v.fwmark) : v.vip ?? "-";
  return `${pad(proto, 4)} ${where}`;
}

function sortViews(views: readonly ServiceView[]): ServiceView[] {
  const key = (v: ServiceView) =>
    `${v.fwmark !== undefined ? "~" : v.protocol} ${v.vip ?? v.fwmark}`;
  return [...views].sort((a, b) => key(a).localeCompare(key(b), "en", { numeric: true }))
    .map((v) => ({
      ...v,
      dests: [...v.dests].sort((a, b) =>
        a.address.localeCompare(b.address, "en", { numeric: true })
      ),
    }));
}

/**
 * Formats services as `ipvsadm -Ln` (`plain`), `-Ln --stats` or `-Ln --rate` would,
 * sorted the way ipvsadm sorts, one line per service and per real server.
 */
export function formatServices(views: readonly ServiceView[], mode: TableMode = "plain"): string {
  const lines: string[] = ["Fulcrum L4 director"];
  const sorted = sortViews(views);
  if (mode === "plain") {
    lines.push("Prot LocalAddress:Port Scheduler Flags");
    lines.push("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn");
    for (const v of sorted) {
      const flags = [...v.flags];
      let head = `${serviceHead(v)} ${v.scheduler}`;
      if (flags.length) head += ` (${flags.join(",")})`;
      if (v.persistence) {
        head += ` persistent ${Math.round(v.persistence.timeout / 1000)}`;
        if (v.persistence.netmask !== "255.255.255.255") head += ` mask ${v.persistence.netmask}`;
      }
      lines.push(head);
      for (const d of v.dests) {
        lines.push(
          `  -> ${pad(d.address, 28)} ${pad(FORWARD[d.forward] ?? d.forward, 7)} ${
            pad(String(d.weight), 6)
          } ${pad(String(d.activeConns), 10)} ${d.inactiveConns}`,
        );
      }
    }
    return lines.join("\n") + "\n";
  }
  const names = mode === "stats"
    ? ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]
    : ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"];
  lines.push(`${pad("Prot LocalAddress:Port", 34)}${names.map((n) => right(n, 8)).join(" ")}`);
  lines.push("  -> RemoteAddress:Port");
  const row = (label: string, x: ServiceView | ServiceView["dests"][number]) => {
    const values = mode === "stats"
      ? [x.stats.conns, x.stats.inPkts, x.stats.outPkts, x.stats.inBytes, x.stats.outBytes]
      : [x.rates.cps, x.rates.inpps, x.rates.outpps, x.rates.inbps, x.rates.outbps];
    return `${pad(label, 34)}${values.map((n) => right(shortNumber(n), 8)).join(" ")}`;
  };
  for (const v of sorted) {
    lines.push(row(serviceHead(v), v));
    for (const d of v.dests) lines.push(row(`  -> ${d.address}`, d));
  }
  return lines.join("\n") + "\n";
}

/**
 * `fulcrum status l4 [--stats|--rate|--json]`: prints the services of the appliance
 * at `adminUrl`; returns the exit code (0 ok, 1 unreachable or error, 2 bad usage).
 */
export async function statusCommand(
  args: string[],
  options: { adminUrl: string; token?: string },
): Promise<number> {
  let mode: TableMode = "plain";
  let json = false;
  for (const arg of args) {
    if (arg === "--stats") mode = "stats";
    else if (arg === "--rate") mode = "rate";
    else if (arg === "--json") json = true;
    else {
      console.error(`unknown option "${arg}"; use --stats, --rate or --json`);
      return 2;
    }
  }
  const url = `${options.adminUrl.replace(/\/$/, "")}/api/v1/services`;
  let res: Response;
  try {
    res = await fetch(url, {
      headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
    });
  } catch (err) {
    console.error(
      `cannot reach the appliance at ${options.adminUrl}: ${
        err instanceof Error ? err.message : String(err)
      }; is \`fulcrum run\` running, and is admin.listen this address?`,
    );
    return 1;
  }
  const body = await res.json().catch(() => undefined);
  if (!res.ok) {
    const message = body?.error?.message ?? `HTTP ${res.status}`;
    console.error(`${url}: ${message}`);
    return 1;
  }
  const views: ServiceView[] = Array.isArray(body) ? body : body?.services ?? [];
  if (json) console.log(JSON.stringify(views, null, 2));
  else Deno.stdout.writeSync(new TextEncoder().encode(formatServices(views, mode)));
  return 0;
}
