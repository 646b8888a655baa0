/**
 * Typed IPVS commands over generic netlink (family "IPVS", version 1; the layout of
 * include/uapi/linux/ip_vs.h). Encoders and decoders are pure and tested against the
 * uapi byte layout; {@link IpvsClient} sends them. Ports are big-endian; an IPv4
 * persistence netmask is a big-endian mask, an IPv6 one a host-order prefix length.
 * @module
 */
import { formatIp, ipBytes } from "../config/address.ts";
import { type GenlCommand, GenlSocket } from "./genl.ts";
import {
  type Attr,
  attr,
  attrMap,
  decodeAttrs,
  encodeAttrs,
  NetlinkError,
  read,
} from "./netlink.ts";

/** Generic netlink family name and version. */
export const IPVS_GENL_NAME = "IPVS";
/** The IPVS generic netlink version every command carries. */
export const IPVS_GENL_VERSION = 1;

/** Commands (enum ipvs_cmds). */
export const IPVS_CMD = {
  NEW_SERVICE: 1,
  SET_SERVICE: 2,
  DEL_SERVICE: 3,
  GET_SERVICE: 4,
  NEW_DEST: 5,
  SET_DEST: 6,
  DEL_DEST: 7,
  GET_DEST: 8,
  NEW_DAEMON: 9,
  DEL_DAEMON: 10,
  GET_DAEMON: 11,
  SET_CONFIG: 12,
  GET_CONFIG: 13,
  SET_INFO: 14,
  GET_INFO: 15,
  ZERO: 16,
  FLUSH: 17,
} as const;

/** Top-level attributes of a command. */
export const IPVS_CMD_ATTR = {
  SERVICE: 1,
  DEST: 2,
  DAEMON: 3,
  TIMEOUT_TCP: 4,
  TIMEOUT_TCP_FIN: 5,
  TIMEOUT_UDP: 6,
} as const;

/** Attributes nested in IPVS_CMD_ATTR_SERVICE. */
export const IPVS_SVC_ATTR = {
  AF: 1,
  PROTOCOL: 2,
  ADDR: 3,
  PORT: 4,
  FWMARK: 5,
  SCHED_NAME: 6,
  FLAGS: 7,
  TIMEOUT: 8,
  NETMASK: 9,
  STATS: 10,
  PE_NAME: 11,
  STATS64: 12,
} as const;

/** Attributes nested in IPVS_CMD_ATTR_DEST. */
export const IPVS_DEST_ATTR = {
  ADDR: 1,
  PORT: 2,
  FWD_METHOD: 3,
  WEIGHT: 4,
  U_THRESH: 5,
  L_THRESH: 6,
  ACTIVE_CONNS: 7,
  INACT_CONNS: 8,
  PERSIST_CONNS: 9,
  STATS: 10,
  ADDR_FAMILY: 11,
  STATS64: 12,
  TUN_TYPE: 13,
  TUN_PORT: 14,
  TUN_FLAGS: 15,
} as const;

/** Attributes nested in IPVS_CMD_ATTR_DAEMON. */
export const IPVS_DAEMON_ATTR = { STATE: 1, MCAST_IFN: 2, SYNC_ID: 3 } as const;

/** Attributes of the stats nests (STATS: u32 counters, u64 bytes; STATS64: all u64). */
export const IPVS_STATS_ATTR = {
  CONNS: 1,
  INPKTS: 2,
  OUTPKTS: 3,
  INBYTES: 4,
  OUTBYTES: 5,
  CPS: 6,
  INPPS: 7,
  OUTPPS: 8,
  INBPS: 9,
  OUTBPS: 10,
} as const;

/** Attributes of the GET_INFO reply. */
export const IPVS_INFO_ATTR = { VERSION: 1, CONN_TAB_SIZE: 2 } as const;

/** Service flags (IP_VS_SVC_F_*). */
export const SVC_F = {
  PERSISTENT: 0x1,
  HASHED: 0x2,
  ONEPACKET: 0x4,
  SCHED1: 0x8,
  SCHED2: 0x10,
  SCHED3: 0x20,
} as const;

/** Scheduler flag names and their bits (sh-fallback = mh-fallback = SCHED1, *-port = SCHED2). */
export const SCHED_FLAG_BITS: Readonly<Record<string, number>> = {
  "sh-fallback": SVC_F.SCHED1,
  "sh-port": SVC_F.SCHED2,
  "mh-fallback": SVC_F.SCHED1,
  "mh-port": SVC_F.SCHED2,
};

/** Forwarding methods (IP_VS_CONN_F_FWD_MASK values). */
export const FWD = { nat: 0, local: 1, tun: 2, dr: 3 } as const;
/** A forwarding method. */
export type Forward = keyof typeof FWD;

/** Tunnel types (IP_VS_CONN_F_TUNNEL_TYPE_*). */
export const TUN_TYPE = { ipip: 0, gue: 1, gre: 2 } as const;
/** Tunnel checksum flags (IP_VS_TUNNEL_ENCAP_FLAG_*). */
export const TUN_FLAG = { none: 0, csum: 1, remcsum: 2 } as const;

/** Sync daemon states. */
export const DAEMON_STATE = { master: 1, backup: 2 } as const;

const AF = { 4: 2, 6: 10 } as const;
const PROTO = { tcp: 6, udp: 17, sctp: 132 } as const;
/** A transport protocol IPVS balances. */
export type Protocol = keyof typeof PROTO;

/** Identifies a virtual service: protocol + address + port, or a firewall mark. */
export interface ServiceKey {
  readonly family: 4 | 6;
  readonly protocol: Protocol;
  readonly address?: string;
  readonly port?: number;
  readonly fwmark?: number;
}

/** A virtual service as sent to the kernel. */
export interface IpvsService extends ServiceKey {
  readonly scheduler: string;
  /** IP_VS_SVC_F_* bits (HASHED is the kernel's own and is ignored). */
  readonly flags: number;
  /** Persistence timeout in seconds. */
  readonly timeout: number;
  /** IPv4: the mask as a 32-bit number (0xffffffff = /32); IPv6: the prefix length. */
  readonly netmask: number;
}

/** Cumulative counters and estimated rates of a service or destination. */
export interface IpvsStats {
  readonly conns: number;
  readonly inPkts: number;
  readonly outPkts: number;
  readonly inBytes: number;
  readonly outBytes: number;
  readonly cps: number;
  readonly inpps: number;
  readonly outpps: number;
  readonly inbps: number;
  readonly outbps: number;
}

/** A service as the kernel reports it. */
export interface IpvsServiceEntry extends IpvsService {
  readonly stats: IpvsStats;
}

/** A tunnel encapsulation for a `tun` destination. */
export interface IpvsTunnel {
  readonly type: keyof typeof TUN_TYPE;
  readonly port: number;
  readonly csum: keyof typeof TUN_FLAG;
}

/** A real server (destination) as sent to the kernel. */
export interface IpvsDest {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
  readonly forward: Forward;
  readonly weight: number;
  readonly upperThreshold: number;
  readonly lowerThreshold: number;
  readonly tunnel?: IpvsTunnel;
}

/** A destination as the kernel reports it. */
export interface IpvsDestEntry extends IpvsDest {
  readonly activeConns: number;
  readonly inactiveConns: number;
  readonly persistentConns: number;
  readonly stats: IpvsStats;
}

/** A sync daemon's settings. */
export interface IpvsDaemon {
  readonly state: "master" | "backup";
  readonly interface: string;
  readonly syncId: number;
}

/** Connection timeouts in seconds (0 in a SET means "leave unchanged"). */
export interface IpvsTimeouts {
  readonly tcp: number;
  readonly tcpFin: number;
  readonly udp: number;
}

/** IPVS version and connection table size. */
export interface IpvsInfo {
  readonly version: number;
  readonly connTabSize: number;
}

// ---------------------------------------------------------------- encoding

function addr16(text: string): Uint8Array {
  const bytes = ipBytes(text);
  const out = new Uint8Array(16);
  out.set(bytes);
  return out;
}

/** The `address:port` text of a key (`[v6]:port`), or `fwmark N`. */
export function serviceKeyText(key: ServiceKey): string {
  if (key.fwmark) return `fwmark ${key.fwmark}${key.family === 6 ? " IPv6" : ""}`;
  const host = key.family === 6 ? `[${key.address}]` : key.address;
  return `${key.protocol} ${host}:${key.port}`;
}

/** The attributes that identify a service (what DEL/GET and every DEST command carry). */
export function serviceKeyAttrs(key: ServiceKey): Attr[] {
  const out: Attr[] = [attr.u16(IPVS_SVC_ATTR.AF, AF[key.family])];
  if (key.fwmark) {
    out.push(attr.u32(IPVS_SVC_ATTR.FWMARK, key.fwmark));
  } else {
    if (key.address === undefined || key.port === undefined) {
      throw new Error(
        `service ${serviceKeyText(key)} needs an address and a port, or a fwmark`,
      );
    }
    out.push(
      attr.u16(IPVS_SVC_ATTR.PROTOCOL, PROTO[key.protocol]),
      attr.bytes(IPVS_SVC_ATTR.ADDR, addr16(key.address)),
      attr.be16(IPVS_SVC_ATTR.PORT, key.port),
    );
  }
  return out;
}

/** The nested IPVS_CMD_ATTR_SERVICE of a NEW/SET (full) or DEL/GET (key only) command. */
export function encodeService(svc: ServiceKey | IpvsService, full: boolean): Attr {
  const attrs = serviceKeyAttrs(svc);
  if (full) {
    const s = svc as IpvsService;
    const flags = new Uint8Array(8);
    const view = new DataView(flags.buffer);
    view.setUint32(0, s.flags & ~SVC_F.HASHED, true);
    view.setUint32(4, 0xffffffff, true);
    attrs.push(
      attr.str(IPVS_SVC_ATTR.SCHED_NAME, s.scheduler),
      attr.bytes(IPVS_SVC_ATTR.FLAGS, flags),
      attr.u32(IPVS_SVC_ATTR.TIMEOUT, s.timeout),
      s.family === 4
        ? attr.be32(IPVS_SVC_ATTR.NETMASK, s.netmask)
        : attr.u32(IPVS_SVC_ATTR.NETMASK, s.netmask),
    );
  }
  return attr.nested(IPVS_CMD_ATTR.SERVICE, attrs);
}

/** The nested IPVS_CMD_ATTR_DEST of a NEW/SET (full) or DEL (address only) command. */
export function encodeDest(dest: IpvsDest, full: boolean): Attr {
  const attrs: Attr[] = [
    attr.bytes(IPVS_DEST_ATTR.ADDR, addr16(dest.address)),
    attr.be16(IPVS_DEST_ATTR.PORT, dest.port),
    attr.u16(IPVS_DEST_ATTR.ADDR_FAMILY, AF[dest.family]),
  ];
  if (full) {
    attrs.push(
      attr.u32(IPVS_DEST_ATTR.FWD_METHOD, FWD[dest.forward]),
      attr.u32(IPVS_DEST_ATTR.WEIGHT, dest.weight),
      attr.u32(IPVS_DEST_ATTR.U_THRESH, dest.upperThreshold),
      attr.u32(IPVS_DEST_ATTR.L_THRESH, dest.lowerThreshold),
    );
    if (dest.forward === "tun" && dest.tunnel) {
      attrs.push(attr.u8(IPVS_DEST_ATTR.TUN_TYPE, TUN_TYPE[dest.tunnel.type]));
      if (dest.tunnel.type !== "ipip") {
        attrs.push(
          attr.be16(IPVS_DEST_ATTR.TUN_PORT, dest.tunnel.port),
          attr.u16(IPVS_DEST_ATTR.TUN_FLAGS, TUN_FLAG[dest.tunnel.csum]),
        );
      }
    }
  }
  return attr.nested(IPVS_CMD_ATTR.DEST, attrs);
}

/** The nested IPVS_CMD_ATTR_DAEMON of NEW_DAEMON (full) or DEL_DAEMON. */
export function encodeDaemon(daemon: IpvsDaemon, full: boolean): Attr {
  const attrs: Attr[] = [attr.u32(IPVS_DAEMON_ATTR.STATE, DAEMON_STATE[daemon.state])];
  if (full) {
    attrs.push(
      attr.str(IPVS_DAEMON_ATTR.MCAST_IFN, daemon.interface),
      attr.u32(IPVS_DAEMON_ATTR.SYNC_ID, daemon.syncId),
    );
  }
  return attr.nested(IPVS_CMD_ATTR.DAEMON, attrs);
}

/** The attributes of SET_CONFIG. */
export function encodeTimeouts(t: IpvsTimeouts): Attr[] {
  return [
    attr.u32(IPVS_CMD_ATTR.TIMEOUT_TCP, t.tcp),
    attr.u32(IPVS_CMD_ATTR.TIMEOUT_TCP_FIN, t.tcpFin),
    attr.u32(IPVS_CMD_ATTR.TIMEOUT_UDP, t.udp),
  ];
}

// ---------------------------------------------------------------- decoding

/** Statistics with every counter and rate at zero (a fresh entry, or a test's). */
export const ZERO_STATS: IpvsStats = {
  conns: 0,
  inPkts: 0,
  outPkts: 0,
  inBytes: 0,
  outBytes: 0,
  cps: 0,
  inpps: 0,
  outpps: 0,
  inbps: 0,
  outbps: 0,
};

/**
 * Decodes a stats nest: STATS (u32 counters and rates, u64 bytes) or STATS64 (all
 * u64); each field's width is read from its attribute length.
 */
export function decodeStats(bytes: Uint8Array): IpvsStats {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const f = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  let o = 0;
  while (o + 4 <= bytes.length) {
    const len = v.getUint16(o, true);
    const type = v.getUint16(o + 2, true) & 0x3fff;
    if (len < 4 || o + len > bytes.length) break;
    if (type >= 1 && type <= 10) {
      f[type] = len - 4 >= 8 ? Number(v.getBigUint64(o + 4, true)) : v.getUint32(o + 4, true);
    }
    o += (len + 3) & ~3;
  }
  return {
    conns: f[1],
    inPkts: f[2],
    outPkts: f[3],
    inBytes: f[4],
    outBytes: f[5],
    cps: f[6],
    inpps: f[7],
    outpps: f[8],
    inbps: f[9],
    outbps: f[10],
  };
}

/** Attribute payloads of one nest by type (one pass, no copies). */
function scan(bytes: Uint8Array, max: number): (Uint8Array | undefined)[] {
  const out: (Uint8Array | undefined)[] = new Array(max + 1);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  while (o + 4 <= bytes.length) {
    const len = v.getUint16(o, true);
    const type = v.getUint16(o + 2, true) & 0x3fff;
    if (len < 4 || o + len > bytes.length) break;
    if (type <= max) out[type] = bytes.subarray(o + 4, o + len);
    o += (len + 3) & ~3;
  }
  return out;
}

function statsOf(a: (Uint8Array | undefined)[], stats: number, stats64: number): IpvsStats {
  const wide = a[stats64];
  if (wide) return decodeStats(wide);
  const narrow = a[stats];
  return narrow ? decodeStats(narrow) : ZERO_STATS;
}

function familyOf(af: number): 4 | 6 {
  return af === AF[6] ? 6 : 4;
}

function protocolOf(p: number): Protocol {
  return p === PROTO.udp ? "udp" : p === PROTO.sctp ? "sctp" : "tcp";
}

function ipText(bytes: Uint8Array, family: 4 | 6): string {
  if (family === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  return formatIp(bytes.subarray(0, 16));
}

const ZERO16 = new Uint8Array(16);

/** Decodes the nested service attributes of a GET_SERVICE reply. */
export function decodeService(nest: Uint8Array): IpvsServiceEntry {
  const a = scan(nest, 12);
  const A = IPVS_SVC_ATTR;
  const family = familyOf(a[A.AF] ? read.u16(a[A.AF]!) : AF[4]);
  const fwmark = a[A.FWMARK] ? read.u32(a[A.FWMARK]!) : 0;
  const netmaskBytes = a[A.NETMASK];
  const base = {
    family,
    protocol: protocolOf(a[A.PROTOCOL] ? read.u16(a[A.PROTOCOL]!) : 0),
    scheduler: a[A.SCHED_NAME] ? read.str(a[A.SCHED_NAME]!) : "",
    flags: a[A.FLAGS] ? read.u32(a[A.FLAGS]!) : 0,
    timeout: a[A.TIMEOUT] ? read.u32(a[A.TIMEOUT]!) : 0,
    netmask: netmaskBytes
      ? (family === 4 ? read.be32(netmaskBytes) : read.u32(netmaskBytes))
      : (family === 4 ? 0xffffffff : 128),
    stats: statsOf(a, A.STATS, A.STATS64),
  };
  if (fwmark) return { ...base, protocol: "tcp", fwmark };
  return {
    ...base,
    address: ipText(a[A.ADDR] ?? ZERO16, family),
    port: a[A.PORT] ? read.be16(a[A.PORT]!) : 0,
  };
}

/** Decodes the nested destination attributes of a GET_DEST reply. */
export function decodeDest(nest: Uint8Array, serviceFamily: 4 | 6 = 4): IpvsDestEntry {
  const a = scan(nest, 15);
  const D = IPVS_DEST_ATTR;
  const u32 = (t: number) => (a[t] ? read.u32(a[t]!) : 0);
  const family = a[D.ADDR_FAMILY] ? familyOf(read.u16(a[D.ADDR_FAMILY]!)) : serviceFamily;
  const fwd = u32(D.FWD_METHOD) & 0x7;
  const forward: Forward = fwd === 3 ? "dr" : fwd === 2 ? "tun" : fwd === 1 ? "local" : "nat";
  let tunnel: IpvsTunnel | undefined;
  if (forward === "tun") {
    const type = a[D.TUN_TYPE] ? read.u8(a[D.TUN_TYPE]!) : 0;
    const flags = a[D.TUN_FLAGS] ? read.u16(a[D.TUN_FLAGS]!) : 0;
    tunnel = {
      type: type === 1 ? "gue" : type === 2 ? "gre" : "ipip",
      port: a[D.TUN_PORT] ? read.be16(a[D.TUN_PORT]!) : 0,
      csum: flags & TUN_FLAG.remcsum ? "remcsum" : flags & TUN_FLAG.csum ? "csum" : "none",
    };
  }
  return {
    family,
    address: ipText(a[D.ADDR] ?? ZERO16, family),
    port: a[D.PORT] ? read.be16(a[D.PORT]!) : 0,
    forward,
    weight: u32(D.WEIGHT),
    upperThreshold: u32(D.U_THRESH),
    lowerThreshold: u32(D.L_THRESH),
    ...(tunnel ? { tunnel } : {}),
    activeConns: u32(D.ACTIVE_CONNS),
    inactiveConns: u32(D.INACT_CONNS),
    persistentConns: u32(D.PERSIST_CONNS),
    stats: statsOf(a, D.STATS, D.STATS64),
  };
}

/** Decodes the nested daemon attributes of a GET_DAEMON reply. */
export function decodeDaemon(nest: Uint8Array): IpvsDaemon {
  const m = attrMap(nest);
  const state = m.has(IPVS_DAEMON_ATTR.STATE) ? read.u32(m.get(IPVS_DAEMON_ATTR.STATE)!) : 0;
  return {
    state: state === DAEMON_STATE.backup ? "backup" : "master",
    interface: m.has(IPVS_DAEMON_ATTR.MCAST_IFN)
      ? read.str(m.get(IPVS_DAEMON_ATTR.MCAST_IFN)!)
      : "",
    syncId: m.has(IPVS_DAEMON_ATTR.SYNC_ID) ? read.u32(m.get(IPVS_DAEMON_ATTR.SYNC_ID)!) : 0,
  };
}

function nestOf(attrs: Uint8Array, type: number): Uint8Array | undefined {
  return decodeAttrs(attrs).find((a) => a.type === type)?.data;
}

// ---------------------------------------------------------------- errors

function describeError(error: unknown, what: string, sched?: string): Error {
  if (!(error instanceof NetlinkError)) return error as Error;
  const hints: Record<number, string> = {
    2: sched
      ? `the kernel has no scheduler "${sched}" (module ip_vs_${sched} is missing or cannot load); pick another scheduler or install the module`
      : "no such entry; it may have been removed by someone else",
    3: "no such service or destination; it may have been removed by someone else",
    17: "it already exists; remove the duplicate or let Fulcrum own it",
    22:
      "the kernel rejected the values (address family, port, flags or netmask); check the service's settings",
    1: "permission denied; run as root or with CAP_NET_ADMIN",
  };
  const hint = hints[error.errno];
  const out = new Error(hint ? `${what}: ${hint}` : error.message);
  (out as Error & { errno?: number }).errno = error.errno;
  return out;
}

/** The errno of an error thrown by {@link IpvsClient}, if it came from the kernel. */
export function errnoOf(error: unknown): number | undefined {
  return (error as { errno?: number } | undefined)?.errno;
}

// ---------------------------------------------------------------- client

/** Options of {@link IpvsClient.open}. */
export interface IpvsOpenOptions {
  /** Called with every request sent: `write` for changes, `read` for gets and dumps. */
  readonly onMessage?: (kind: "write" | "read", cmd: number) => void;
}

const READ_CMDS = new Set<number>([
  IPVS_CMD.GET_SERVICE,
  IPVS_CMD.GET_DEST,
  IPVS_CMD.GET_DAEMON,
  IPVS_CMD.GET_CONFIG,
  IPVS_CMD.GET_INFO,
]);

/** A connection to the kernel's IPVS: one typed method per command. */
export class IpvsClient {
  readonly #genl: GenlSocket;

  private constructor(genl: GenlSocket) {
    this.#genl = genl;
  }

  /** Opens generic netlink and resolves the "IPVS" family; throws when ip_vs is not loaded. */
  static async open(options: IpvsOpenOptions = {}): Promise<IpvsClient> {
    try {
      const genl = await GenlSocket.open(IPVS_GENL_NAME, {
        onRequest: (cmd) => options.onMessage?.(READ_CMDS.has(cmd) ? "read" : "write", cmd),
      });
      return new IpvsClient(genl);
    } catch (error) {
      if (error instanceof NetlinkError && error.errno === 2) {
        throw new Error(
          'the kernel has no IPVS (generic netlink family "IPVS" not found); load it with "modprobe ip_vs" or use l4.dataplane: userspace',
        );
      }
      throw error;
    }
  }

  /** The resolved family id (dynamic, differs between boots). */
  get familyId(): number {
    return this.#genl.family.id;
  }

  async #write(cmd: number, attrs: readonly Attr[], what: string, sched?: string): Promise<void> {
    try {
      await this.#genl.request(cmd, attrs, { what });
    } catch (error) {
      throw describeError(error, what, sched);
    }
  }

  /** Adds a virtual service. */
  newService(svc: IpvsService): Promise<void> {
    return this.#write(
      IPVS_CMD.NEW_SERVICE,
      [encodeService(svc, true)],
      `add service ${serviceKeyText(svc)}`,
      svc.scheduler,
    );
  }

  /** Changes a service's scheduler, flags, timeout or netmask. */
  setService(svc: IpvsService): Promise<void> {
    return this.#write(
      IPVS_CMD.SET_SERVICE,
      [encodeService(svc, true)],
      `change service ${serviceKeyText(svc)}`,
      svc.scheduler,
    );
  }

  /** Deletes a service and its destinations. */
  delService(key: ServiceKey): Promise<void> {
    return this.#write(
      IPVS_CMD.DEL_SERVICE,
      [encodeService(key, false)],
      `delete service ${serviceKeyText(key)}`,
    );
  }

  /** Adds a destination to a service. */
  newDest(key: ServiceKey, dest: IpvsDest): Promise<void> {
    return this.#write(
      IPVS_CMD.NEW_DEST,
      [encodeService(key, false), encodeDest(dest, true)],
      `add real server ${destText(dest)} to ${serviceKeyText(key)}`,
    );
  }

  /** Changes a destination's weight, thresholds or forwarding method. */
  setDest(key: ServiceKey, dest: IpvsDest): Promise<void> {
    return this.#write(
      IPVS_CMD.SET_DEST,
      [encodeService(key, false), encodeDest(dest, true)],
      `change real server ${destText(dest)} of ${serviceKeyText(key)}`,
    );
  }

  /** Removes a destination. */
  delDest(key: ServiceKey, dest: Pick<IpvsDest, "family" | "address" | "port">): Promise<void> {
    return this.#write(
      IPVS_CMD.DEL_DEST,
      [
        encodeService(key, false),
        encodeDest(
          { ...dest, forward: "nat", weight: 0, upperThreshold: 0, lowerThreshold: 0 },
          false,
        ),
      ],
      `delete real server ${destText(dest)} of ${serviceKeyText(key)}`,
    );
  }

  /**
   * Sends many changes, up to 128 per system call, in order. Returns for each one
   * `undefined` (done) or its error; a failure does not stop the ones after it.
   */
  async batch(writes: readonly IpvsWrite[]): Promise<(Error | undefined)[]> {
    const commands = writes.map(writeCommand);
    const results = await this.#genl.batch(commands);
    return results.map((r, i) => {
      if (!r) return undefined;
      const w = writes[i];
      const what = commands[i].what;
      const sched = "service" in w ? w.service.scheduler : undefined;
      return describeError(r, typeof what === "function" ? what() : what, sched);
    });
  }

  /** Every service (one dump). */
  async services(): Promise<IpvsServiceEntry[]> {
    const replies = await this.#genl.request(IPVS_CMD.GET_SERVICE, [], {
      dump: true,
      what: "list services",
    });
    return replies.flatMap((r) => {
      const nest = nestOf(r.attrs, IPVS_CMD_ATTR.SERVICE);
      return nest ? [decodeService(nest)] : [];
    });
  }

  /** One service, or undefined when the kernel has none with that key. */
  async service(key: ServiceKey): Promise<IpvsServiceEntry | undefined> {
    try {
      const replies = await this.#genl.request(IPVS_CMD.GET_SERVICE, [encodeService(key, false)], {
        what: `get service ${serviceKeyText(key)}`,
      });
      const nest = replies.length ? nestOf(replies[0].attrs, IPVS_CMD_ATTR.SERVICE) : undefined;
      return nest ? decodeService(nest) : undefined;
    } catch (error) {
      if (error instanceof NetlinkError && (error.errno === 3 || error.errno === 2)) {
        return undefined;
      }
      throw error;
    }
  }

  /** The destinations of one service (one dump). */
  async dests(key: ServiceKey): Promise<IpvsDestEntry[]> {
    const replies = await this.#genl.request(IPVS_CMD.GET_DEST, [encodeService(key, false)], {
      dump: true,
      what: `list real servers of ${serviceKeyText(key)}`,
    });
    return replies.flatMap((r) => {
      const nest = nestOf(r.attrs, IPVS_CMD_ATTR.DEST);
      return nest ? [decodeDest(nest, key.family)] : [];
    });
  }

  /** Removes every service and destination (ipvsadm -C). */
  flush(): Promise<void> {
    return this.#write(IPVS_CMD.FLUSH, [], "flush IPVS");
  }

  /** Zeroes every counter. */
  zero(): Promise<void> {
    return this.#write(IPVS_CMD.ZERO, [], "zero IPVS counters");
  }

  /** Sets connection timeouts (seconds; 0 keeps a value). */
  setTimeouts(t: IpvsTimeouts): Promise<void> {
    return this.#write(IPVS_CMD.SET_CONFIG, encodeTimeouts(t), "set IPVS timeouts");
  }

  /** The connection timeouts in seconds. */
  async timeouts(): Promise<IpvsTimeouts> {
    const replies = await this.#genl.request(IPVS_CMD.GET_CONFIG, [], {
      what: "get IPVS timeouts",
    });
    const m = attrMap(replies[0]?.attrs ?? new Uint8Array(0));
    const u = (t: number) => (m.has(t) ? read.u32(m.get(t)!) : 0);
    return {
      tcp: u(IPVS_CMD_ATTR.TIMEOUT_TCP),
      tcpFin: u(IPVS_CMD_ATTR.TIMEOUT_TCP_FIN),
      udp: u(IPVS_CMD_ATTR.TIMEOUT_UDP),
    };
  }

  /** IPVS version and connection table size. */
  async info(): Promise<IpvsInfo> {
    const replies = await this.#genl.request(IPVS_CMD.GET_INFO, [], { what: "get IPVS info" });
    const m = attrMap(replies[0]?.attrs ?? new Uint8Array(0));
    return {
      version: m.has(IPVS_INFO_ATTR.VERSION) ? read.u32(m.get(IPVS_INFO_ATTR.VERSION)!) : 0,
      connTabSize: m.has(IPVS_INFO_ATTR.CONN_TAB_SIZE)
        ? read.u32(m.get(IPVS_INFO_ATTR.CONN_TAB_SIZE)!)
        : 0,
    };
  }

  /** Starts a sync daemon. */
  newDaemon(daemon: IpvsDaemon): Promise<void> {
    return this.#write(
      IPVS_CMD.NEW_DAEMON,
      [encodeDaemon(daemon, true)],
      `start ${daemon.state} sync daemon on ${daemon.interface}`,
    );
  }

  /** Stops the sync daemon in `state`. */
  delDaemon(state: IpvsDaemon["state"]): Promise<void> {
    return this.#write(
      IPVS_CMD.DEL_DAEMON,
      [encodeDaemon({ state, interface: "", syncId: 0 }, false)],
      `stop ${state} sync daemon`,
    );
  }

  /** The running sync daemons. */
  async daemons(): Promise<IpvsDaemon[]> {
    const replies = await this.#genl.request(IPVS_CMD.GET_DAEMON, [], {
      dump: true,
      what: "list sync daemons",
    });
    return replies.flatMap((r) => {
      const nest = nestOf(r.attrs, IPVS_CMD_ATTR.DAEMON);
      return nest ? [decodeDaemon(nest)] : [];
    });
  }

  /** Closes the socket. */
  close(): void {
    this.#genl.close();
  }
}

/** One change for {@link IpvsClient.batch}. */
export type IpvsWrite =
  | { readonly kind: "newService" | "setService"; readonly service: IpvsService }
  | { readonly kind: "delService"; readonly key: ServiceKey }
  | { readonly kind: "newDest" | "setDest"; readonly key: ServiceKey; readonly dest: IpvsDest }
  | {
    readonly kind: "delDest";
    readonly key: ServiceKey;
    readonly dest: Pick<IpvsDest, "family" | "address" | "port">;
  };

const keyCache = new WeakMap<ServiceKey, Uint8Array>();

/** The encoded IPVS_CMD_ATTR_SERVICE key nest, cached per key object. */
function keyBytes(key: ServiceKey): Uint8Array {
  let b = keyCache.get(key);
  if (!b) {
    b = encodeAttrs([encodeService(key, false)]);
    keyCache.set(key, b);
  }
  return b;
}

/**
 * Encodes the attributes of a NEW/SET/DEL_DEST command straight into bytes: the
 * service key nest (cached) then the dest nest. Same bytes as
 * `encodeAttrs([encodeService(key, false), encodeDest(dest, full)])`, fewer allocations.
 */
export function encodeDestCommand(
  key: ServiceKey,
  dest: IpvsDest,
  options: { full?: boolean } = {},
): Uint8Array {
  const full = options.full ?? true;
  const k = keyBytes(key);
  const tun = full && dest.forward === "tun" && dest.tunnel;
  const tunBytes = tun ? (dest.tunnel!.type === "ipip" ? 8 : 24) : 0;
  const destLen = 4 + 20 + 8 + 8 + (full ? 32 : 0) + tunBytes;
  const out = new Uint8Array(k.length + destLen);
  out.set(k, 0);
  const v = new DataView(out.buffer);
  let o = k.length;
  const put = (type: number, len: number) => {
    v.setUint16(o, len, true);
    v.setUint16(o + 2, type, true);
    o += 4;
  };
  put(IPVS_CMD_ATTR.DEST | 0x8000, destLen);
  put(IPVS_DEST_ATTR.ADDR, 20);
  out.set(ipBytes(dest.address), o);
  o += 16;
  put(IPVS_DEST_ATTR.PORT, 6);
  v.setUint16(o, dest.port, false);
  o += 4;
  put(IPVS_DEST_ATTR.ADDR_FAMILY, 6);
  v.setUint16(o, AF[dest.family], true);
  o += 4;
  if (full) {
    for (
      const [t, value] of [
        [IPVS_DEST_ATTR.FWD_METHOD, FWD[dest.forward]],
        [IPVS_DEST_ATTR.WEIGHT, dest.weight],
        [IPVS_DEST_ATTR.U_THRESH, dest.upperThreshold],
        [IPVS_DEST_ATTR.L_THRESH, dest.lowerThreshold],
      ]
    ) {
      put(t, 8);
      v.setUint32(o, value >>> 0, true);
      o += 4;
    }
    if (tun) {
      put(IPVS_DEST_ATTR.TUN_TYPE, 5);
      out[o] = TUN_TYPE[dest.tunnel!.type];
      o += 4;
      if (dest.tunnel!.type !== "ipip") {
        put(IPVS_DEST_ATTR.TUN_PORT, 6);
        v.setUint16(o, dest.tunnel!.port, false);
        o += 4;
        put(IPVS_DEST_ATTR.TUN_FLAGS, 6);
        v.setUint16(o, TUN_FLAG[dest.tunnel!.csum], true);
        o += 4;
      }
    }
  }
  return out;
}

/** The generic netlink command of one change (its error text is built only on failure). */
export function writeCommand(w: IpvsWrite): GenlCommand {
  switch (w.kind) {
    case "newService":
      return {
        cmd: IPVS_CMD.NEW_SERVICE,
        attrs: [encodeService(w.service, true)],
        what: () => `add service ${serviceKeyText(w.service)}`,
      };
    case "setService":
      return {
        cmd: IPVS_CMD.SET_SERVICE,
        attrs: [encodeService(w.service, true)],
        what: () => `change service ${serviceKeyText(w.service)}`,
      };
    case "delService":
      return {
        cmd: IPVS_CMD.DEL_SERVICE,
        encoded: keyBytes(w.key),
        what: () => `delete service ${serviceKeyText(w.key)}`,
      };
    case "newDest":
      return {
        cmd: IPVS_CMD.NEW_DEST,
        encoded: encodeDestCommand(w.key, w.dest),
        what: () => `add real server ${destText(w.dest)} to ${serviceKeyText(w.key)}`,
      };
    case "setDest":
      return {
        cmd: IPVS_CMD.SET_DEST,
        encoded: encodeDestCommand(w.key, w.dest),
        what: () => `change real server ${destText(w.dest)} of ${serviceKeyText(w.key)}`,
      };
    case "delDest":
      return {
        cmd: IPVS_CMD.DEL_DEST,
        encoded: encodeDestCommand(
          w.key,
          { ...w.dest, forward: "nat", weight: 0, upperThreshold: 0, lowerThreshold: 0 },
          { full: false },
        ),
        what: () => `delete real server ${destText(w.dest)} of ${serviceKeyText(w.key)}`,
      };
  }
}

/** `address:port` of a destination (`[v6]:port`). */
export function destText(dest: Pick<IpvsDest, "family" | "address" | "port">): string {
  return dest.family === 6 ? `[${dest.address}]:${dest.port}` : `${dest.address}:${dest.port}`;
}

// ---------------------------------------------------------------- defense sysctls

/** The /proc/sys/net/ipv4/vs knobs Fulcrum reads and writes. */
export const DEFENSE_SYSCTLS = ["drop_entry", "drop_packet", "secure_tcp", "amemthresh"] as const;
/** Values of the defense sysctls. */
export type DefenseValues = Partial<Record<typeof DEFENSE_SYSCTLS[number], number>>;

const VS_SYSCTL_DIR = "/proc/sys/net/ipv4/vs";

/** Reads the defense sysctls that exist; missing ones are left out. */
export async function readDefense(dir = VS_SYSCTL_DIR): Promise<DefenseValues> {
  const out: Record<string, number> = {};
  for (const name of DEFENSE_SYSCTLS) {
    try {
      out[name] = Number((await Deno.readTextFile(`${dir}/${name}`)).trim());
    } catch { /* absent */ }
  }
  return out as DefenseValues;
}

/** Writes the given defense sysctls; returns the names it changed. */
export async function writeDefense(values: DefenseValues, dir = VS_SYSCTL_DIR): Promise<string[]> {
  const current = await readDefense(dir);
  const changed: string[] = [];
  for (const name of DEFENSE_SYSCTLS) {
    const want = values[name];
    if (want === undefined || current[name] === want) continue;
    try {
      await Deno.writeTextFile(`${dir}/${name}`, `${want}\n`);
    } catch (error) {
      throw new Error(
        `cannot set ${dir}/${name} to ${want} (${
          (error as Error).message
        }); run as root with ip_vs loaded`,
      );
    }
    changed.push(name);
  }
  return changed;
}
