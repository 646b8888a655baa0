/**
 * rtnetlink: interface addresses (add, delete, list) and link state, the way VRRP
 * claims and releases virtual addresses without shelling out to `ip`.
 * @module
 */
import { formatIp, ipBytes } from "../config/address.ts";
import { AF_INET, AF_INET6 } from "./libc.ts";
import {
  type Attr,
  attr,
  attrMap,
  NETLINK_ROUTE,
  NetlinkError,
  NetlinkSocket,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  read,
  type Reply,
} from "./netlink.ts";

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_GETADDR = 22;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_LABEL = 3;
const IFA_FLAGS = 8;
/** Address flags. */
export const IFA_F_SECONDARY = 0x01;
export const IFA_F_NODAD = 0x02;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINK = 5;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_MACVLAN_MODE = 1;
const MACVLAN_MODE_PRIVATE = 1;
const MACVLAN_MODE_BRIDGE = 4;

/** Link flags. */
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
export const IFF_LOWER_UP = 0x10000;

const EEXIST = 17;
const EADDRNOTAVAIL = 99;
const ENODEV = 19;

/** An address on an interface. */
export interface InterfaceAddress {
  readonly ifindex: number;
  readonly family: 4 | 6;
  readonly address: string;
  readonly prefix: number;
  readonly flags: number;
  readonly scope: number;
  readonly label?: string;
}

/** The state of one interface. */
export interface LinkInfo {
  readonly index: number;
  readonly name: string;
  readonly flags: number;
  /** Administratively up and carrier present. */
  readonly up: boolean;
  readonly mac?: Uint8Array;
  readonly mtu?: number;
}

function ifaddrmsg(family: 4 | 6, prefix: number, ifindex: number, scope = 0): Uint8Array {
  const out = new Uint8Array(8);
  out[0] = family === 4 ? AF_INET : AF_INET6;
  out[1] = prefix;
  out[3] = scope;
  new DataView(out.buffer).setUint32(4, ifindex, true);
  return out;
}

function ifinfomsg(ifindex: number, flags = 0, change = 0): Uint8Array {
  const out = new Uint8Array(16);
  new DataView(out.buffer).setInt32(4, ifindex, true);
  new DataView(out.buffer).setUint32(8, flags, true);
  new DataView(out.buffer).setUint32(12, change, true);
  return out;
}

/** Decodes an RTM_NEWADDR message. */
export function decodeAddress(reply: Reply): InterfaceAddress | undefined {
  const p = reply.payload;
  if (p.length < 8) return undefined;
  const family = p[0] === AF_INET ? 4 : p[0] === AF_INET6 ? 6 : undefined;
  if (!family) return undefined;
  const attrs = attrMap(p.subarray(8));
  const raw = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
  if (!raw) return undefined;
  const flagsAttr = attrs.get(IFA_FLAGS);
  const label = attrs.get(IFA_LABEL);
  return {
    ifindex: new DataView(p.buffer, p.byteOffset + 4, 4).getUint32(0, true),
    family,
    address: formatIp(raw),
    prefix: p[1],
    flags: flagsAttr ? read.u32(flagsAttr) : p[2],
    scope: p[3],
    label: label ? read.str(label) : undefined,
  };
}

/** Decodes an RTM_NEWLINK message. */
export function decodeLink(reply: Reply): LinkInfo | undefined {
  const p = reply.payload;
  if (p.length < 16) return undefined;
  const view = new DataView(p.buffer, p.byteOffset, 16);
  const attrs = attrMap(p.subarray(16));
  const flags = view.getUint32(8, true);
  const name = attrs.get(IFLA_IFNAME);
  const mtu = attrs.get(IFLA_MTU);
  return {
    index: view.getInt32(4, true),
    name: name ? read.str(name) : "",
    flags,
    up: (flags & IFF_UP) !== 0 && (flags & IFF_LOWER_UP) !== 0,
    mac: attrs.get(IFLA_ADDRESS)?.slice(),
    mtu: mtu ? read.u32(mtu) : undefined,
  };
}

/** A route-netlink connection (one request at a time). */
export class Rtnl {
  readonly #sock: NetlinkSocket;

  /** Opens a NETLINK_ROUTE socket in the current network namespace. */
  constructor() {
    this.#sock = new NetlinkSocket(NETLINK_ROUTE);
  }

  /** Every address, or those of one interface. */
  async addresses(ifindex?: number): Promise<InterfaceAddress[]> {
    const replies = await this.#sock.request(
      { type: RTM_GETADDR, flags: NLM_F_DUMP, header: ifaddrmsg(4, 0, 0).fill(0) },
      "list addresses",
    );
    const out: InterfaceAddress[] = [];
    for (const r of replies) {
      if (r.type !== RTM_NEWADDR) continue;
      const a = decodeAddress(r);
      if (a && (ifindex === undefined || a.ifindex === ifindex)) out.push(a);
    }
    return out;
  }

  /**
   * Adds `address/prefix` to interface `ifindex`. Returns false when it was already
   * there. IPv6 addresses skip duplicate address detection (a VIP must work at once).
   */
  async addAddress(
    ifindex: number,
    cidr: { address: string; prefix: number },
    options: { label?: string } = {},
  ): Promise<boolean> {
    const bytes = ipBytes(cidr.address);
    const family = bytes.length === 4 ? 4 : 6;
    const attrs: Attr[] = [attr.bytes(IFA_LOCAL, bytes), attr.bytes(IFA_ADDRESS, bytes)];
    if (family === 6) attrs.splice(0, 1);
    if (family === 6) attrs.push(attr.u32(IFA_FLAGS, IFA_F_NODAD));
    if (options.label && family === 4) attrs.push(attr.str(IFA_LABEL, options.label));
    const header = ifaddrmsg(family, cidr.prefix, ifindex);
    if (family === 6) header[2] = IFA_F_NODAD;
    try {
      await this.#sock.request(
        { type: RTM_NEWADDR, flags: NLM_F_CREATE | NLM_F_EXCL, header, attrs },
        `add address ${cidr.address}/${cidr.prefix} to interface ${ifindex}`,
      );
      return true;
    } catch (error) {
      if (error instanceof NetlinkError && error.errno === EEXIST) return false;
      throw error;
    }
  }

  /** Removes `address/prefix` from `ifindex`. Returns false when it was not there. */
  async deleteAddress(
    ifindex: number,
    cidr: { address: string; prefix: number },
  ): Promise<boolean> {
    const bytes = ipBytes(cidr.address);
    const family = bytes.length === 4 ? 4 : 6;
    const attrs: Attr[] = family === 4
      ? [attr.bytes(IFA_LOCAL, bytes), attr.bytes(IFA_ADDRESS, bytes)]
      : [attr.bytes(IFA_ADDRESS, bytes)];
    try {
      await this.#sock.request(
        { type: RTM_DELADDR, flags: 0, header: ifaddrmsg(family, cidr.prefix, ifindex), attrs },
        `delete address ${cidr.address}/${cidr.prefix} from interface ${ifindex}`,
      );
      return true;
    } catch (error) {
      if (
        error instanceof NetlinkError &&
        (error.errno === EADDRNOTAVAIL || error.errno === ENODEV)
      ) return false;
      throw error;
    }
  }

  /** The state of interface `ifindex`, or `undefined` when it does not exist. */
  async link(ifindex: number): Promise<LinkInfo | undefined> {
    try {
      const replies = await this.#sock.request(
        { type: RTM_GETLINK, flags: 0, header: ifinfomsg(ifindex) },
        `get link ${ifindex}`,
      );
      const r = replies.find((m) => m.type === RTM_NEWLINK);
      return r ? decodeLink(r) : undefined;
    } catch (error) {
      if (error instanceof NetlinkError && error.errno === ENODEV) return undefined;
      throw error;
    }
  }

  /** Every interface. */
  async links(): Promise<LinkInfo[]> {
    const replies = await this.#sock.request(
      { type: RTM_GETLINK, flags: NLM_F_DUMP, header: ifinfomsg(0) },
      "list links",
    );
    return replies.filter((m) => m.type === RTM_NEWLINK).map(decodeLink).filter((l) => !!l);
  }

  /**
   * Creates a macvlan `name` on top of `parent` with the given MAC (the VRRP virtual
   * MAC for `use_vmac`), up unless `up: false`. Returns false when it already existed.
   */
  async addMacvlan(
    name: string,
    parent: number,
    options: { mac: Uint8Array; mode?: "bridge" | "private"; up?: boolean },
  ): Promise<boolean> {
    const up = options.up ?? true;
    const mode = options.mode === "private" ? MACVLAN_MODE_PRIVATE : MACVLAN_MODE_BRIDGE;
    try {
      await this.#sock.request({
        type: RTM_NEWLINK,
        flags: NLM_F_CREATE | NLM_F_EXCL,
        header: ifinfomsg(0, up ? IFF_UP : 0, up ? IFF_UP : 0),
        attrs: [
          attr.str(IFLA_IFNAME, name),
          attr.u32(IFLA_LINK, parent),
          attr.bytes(IFLA_ADDRESS, options.mac),
          attr.nested(IFLA_LINKINFO, [
            attr.str(IFLA_INFO_KIND, "macvlan"),
            attr.nested(IFLA_INFO_DATA, [attr.u32(IFLA_MACVLAN_MODE, mode)]),
          ]),
        ],
      }, `create macvlan ${name}`);
      return true;
    } catch (error) {
      if (error instanceof NetlinkError && error.errno === EEXIST) return false;
      throw error;
    }
  }

  /** Sets interface `ifindex` administratively up or down. */
  async setLinkUp(ifindex: number, up: boolean): Promise<void> {
    await this.#sock.request(
      { type: RTM_NEWLINK, flags: 0, header: ifinfomsg(ifindex, up ? IFF_UP : 0, IFF_UP) },
      `set link ${ifindex} ${up ? "up" : "down"}`,
    );
  }

  /** Deletes interface `ifindex`; false when it was already gone. */
  async deleteLink(ifindex: number): Promise<boolean> {
    try {
      await this.#sock.request(
        { type: RTM_DELLINK, flags: 0, header: ifinfomsg(ifindex) },
        `delete link ${ifindex}`,
      );
      return true;
    } catch (error) {
      if (error instanceof NetlinkError && error.errno === ENODEV) return false;
      throw error;
    }
  }

  /** Closes the socket. */
  close(): void {
    this.#sock.close();
  }
}
