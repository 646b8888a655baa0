/**
 * Pure formatters that print the kernel's IPVS table the way `ipvsadm -Ln` (plain,
 * `--stats`, `--rate`) and `ipvsadm-save -n` do, so operators can compare.
 * @module
 */
import type { IpvsDestEntry, IpvsInfo, IpvsServiceEntry } from "../../sys/ipvs.ts";
import { ipBytes } from "../../config/address.ts";

/** A service with its destinations, as read from the kernel. */
export interface TableEntry {
  readonly service: IpvsServiceEntry;
  readonly dests: readonly IpvsDestEntry[];
}

/** Output variants of `ipvsadm -Ln`. */
export type ListMode = "plain" | "stats" | "rate";

const PROTO_NUM = { tcp: 6, udp: 17, sctp: 132 } as const;
const FWD_NAME = { nat: "Masq", local: "Local", tun: "Tunnel", dr: "Route" } as const;
const FWD_SWITCH = { nat: "-m", local: "-g", tun: "-i", dr: "-g" } as const;

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function compareServices(a: IpvsServiceEntry, b: IpvsServiceEntry): number {
  return (a.fwmark ?? 0) - (b.fwmark ?? 0) || a.family - b.family ||
    (a.fwmark ? 0 : PROTO_NUM[a.protocol] - PROTO_NUM[b.protocol]) ||
    (a.fwmark
      ? 0
      : compareBytes(ipBytes(a.address ?? "0.0.0.0"), ipBytes(b.address ?? "0.0.0.0"))) ||
    (a.port ?? 0) - (b.port ?? 0);
}

function compareDests(a: IpvsDestEntry, b: IpvsDestEntry): number {
  return a.family - b.family || compareBytes(ipBytes(a.address), ipBytes(b.address)) ||
    a.port - b.port;
}

/** Services and destinations in ipvsadm's sorted order. */
export function sortTable(table: readonly TableEntry[]): TableEntry[] {
  return [...table].sort((x, y) => compareServices(x.service, y.service)).map((e) => ({
    service: e.service,
    dests: [...e.dests].sort(compareDests),
  }));
}

function hostPort(family: 4 | 6, address: string, port: number): string {
  return family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

function padEnd(text: string, width: number): string {
  return text.length >= width ? text : text + " ".repeat(width - text.length);
}

function padStart(text: string, width: number): string {
  return text.length >= width ? text : " ".repeat(width - text.length) + text;
}

function netmask4(mask: number): string {
  const m = mask >>> 0;
  return [m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255].join(".");
}

/** ipvsadm's numbers: 9 wide, scaled with K/M/G/T past 100 million. */
export function largeNumber(n: number): string {
  if (n < 100_000_000) return padStart(String(n), 9);
  if (n < 1_000_000_000) return padStart(String(Math.floor(n / 1000)), 8) + "K";
  if (n < 100_000_000_000) return padStart(String(Math.floor(n / 1_000_000)), 8) + "M";
  if (n < 100_000_000_000_000) return padStart(String(Math.floor(n / 1_000_000_000)), 8) + "G";
  return padStart(String(Math.floor(n / 1_000_000_000_000)), 8) + "T";
}

function schedFlags(svc: IpvsServiceEntry): string[] {
  const out: string[] = [];
  const prefix = svc.scheduler === "mh" ? "mh" : svc.scheduler === "sh" ? "sh" : "";
  if (svc.flags & 0x8) out.push(prefix ? `${prefix}-fallback` : "flag-1");
  if (svc.flags & 0x10) out.push(prefix ? `${prefix}-port` : "flag-2");
  if (svc.flags & 0x20) out.push("flag-3");
  return out;
}

function listName(svc: IpvsServiceEntry): string {
  if (svc.fwmark) return `FWM  ${svc.fwmark}${svc.family === 6 ? " IPv6" : ""}`;
  const name = `${padEnd(svc.protocol.toUpperCase(), 4)} ${
    hostPort(svc.family, svc.address ?? "", svc.port ?? 0)
  }`;
  return svc.family === 6 ? name : name.slice(0, 33);
}

function persistence(svc: IpvsServiceEntry, word: [string, string]): string {
  if (!(svc.flags & 0x1)) return "";
  let out = ` ${word[0]} ${svc.timeout}`;
  if (svc.family === 4 && (svc.netmask >>> 0) !== 0xffffffff) {
    out += ` ${word[1]} ${netmask4(svc.netmask)}`;
  }
  if (svc.family === 6 && svc.netmask !== 128) out += ` ${word[1]} ${svc.netmask}`;
  return out;
}

/** The `ipvsadm -Ln` text (`--stats` / `--rate` with `mode`). */
export function formatList(
  info: IpvsInfo,
  table: readonly TableEntry[],
  options: { mode?: ListMode } = {},
): string {
  const mode = options.mode ?? "plain";
  const v = info.version;
  const lines = [
    `IP Virtual Server version ${(v >> 16) & 0xff}.${(v >> 8) & 0xff}.${
      v & 0xff
    } (size=${info.connTabSize})`,
  ];
  if (mode === "plain") {
    lines.push(
      "Prot LocalAddress:Port Scheduler Flags",
      "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
    );
  } else {
    const cols = mode === "stats"
      ? ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]
      : ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"];
    lines.push(
      `${padEnd("Prot LocalAddress:Port", 33)} ${cols.map((c) => padStart(c, 8)).join(" ")}`,
      "  -> RemoteAddress:Port",
    );
  }
  for (const { service: svc, dests } of sortTable(table)) {
    const name = listName(svc);
    if (mode === "plain") {
      const flags = schedFlags(svc);
      lines.push(
        `${name} ${svc.scheduler}${flags.length ? ` (${flags.join(",")})` : ""}${
          persistence(svc, ["persistent", "mask"])
        }`,
      );
    } else {
      const s = svc.stats;
      const nums = mode === "stats"
        ? [s.conns, s.inPkts, s.outPkts, s.inBytes, s.outBytes]
        : [s.cps, s.inpps, s.outpps, s.inbps, s.outbps];
      lines.push(padEnd(name, 33) + nums.map(largeNumber).join(""));
    }
    for (const d of dests) {
      let dname = hostPort(d.family, d.address, d.port);
      if (svc.family !== 6) dname = dname.slice(0, 28);
      if (mode === "plain") {
        lines.push(
          `  -> ${padEnd(dname, 28)} ${padEnd(FWD_NAME[d.forward], 7)} ${
            padEnd(String(d.weight), 6)
          } ${padEnd(String(d.activeConns), 10)} ${padEnd(String(d.inactiveConns), 10)}`,
        );
      } else if (mode === "stats") {
        const s = d.stats;
        lines.push(
          `  -> ${padEnd(dname, 28)}` +
            [s.conns, s.inPkts, s.outPkts, s.inBytes, s.outBytes].map(largeNumber).join(""),
        );
      } else {
        const s = d.stats;
        lines.push(
          `  -> ${padEnd(dname, 28)} ${padStart(String(s.cps), 8)} ${
            padStart(String(s.inpps), 8)
          } ${padStart(String(s.outpps), 8)}${largeNumber(s.inbps)}${largeNumber(s.outbps)}`,
        );
      }
    }
  }
  return lines.join("\n") + "\n";
}

function ruleName(svc: IpvsServiceEntry): string {
  if (svc.fwmark) return `-f ${svc.fwmark}${svc.family === 6 ? " -6" : ""}`;
  const sw = svc.protocol === "tcp" ? "-t" : svc.protocol === "udp" ? "-u" : "--sctp-service";
  return `${sw} ${hostPort(svc.family, svc.address ?? "", svc.port ?? 0)}`;
}

/** The `ipvsadm-save -n` text: one `-A` line per service, one `-a` per destination. */
export function formatSave(table: readonly TableEntry[]): string {
  const lines: string[] = [];
  for (const { service: svc, dests } of sortTable(table)) {
    const name = ruleName(svc);
    const flags = schedFlags(svc);
    lines.push(
      `-A ${name} -s ${svc.scheduler}${persistence(svc, ["-p", "-M"])}${
        flags.length ? ` -b ${flags.join(",")}` : ""
      }`,
    );
    for (const d of dests) {
      let line = `-a ${name} -r ${hostPort(d.family, d.address, d.port)} ${
        FWD_SWITCH[d.forward]
      } -w ${d.weight}`;
      if (d.forward === "tun") {
        const t = d.tunnel ?? { type: "ipip", port: 0, csum: "none" };
        line += ` --tun-type ${t.type}`;
        if (t.type === "gue") line += ` --tun-port ${t.port}`;
        if (t.type !== "ipip") {
          line += t.csum === "csum"
            ? " --tun-csum"
            : t.csum === "remcsum"
            ? " --tun-remcsum"
            : " --tun-nocsum";
        }
      }
      lines.push(line);
    }
  }
  return lines.length ? lines.join("\n") + "\n" : "";
}
