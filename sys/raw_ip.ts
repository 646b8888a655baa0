/**
 * Raw IP sockets for one IP protocol (VRRP is 112) bound to one interface: multicast
 * join with the interface given explicitly (`ip_mreqn` / `ipv6_mreq`), TTL / hop limit
 * 255, no loopback of our own packets. IPv4 reads include the IP header; IPv6 reads
 * do not, so the kernel is asked to drop packets whose hop limit is below 255.
 * @module
 */
import { formatIp, ipBytes } from "../config/address.ts";
import {
  AF_INET,
  AF_INET6,
  bind,
  close,
  type Datagram,
  ifNameToIndex,
  recvfrom,
  recvfromNow,
  sendto,
  setReceiveTimeout,
  setsockopt,
  setsockoptInt,
  SO_BINDTODEVICE,
  SO_RCVBUF,
  SOCK_RAW,
  socket,
  SOL_SOCKET,
} from "./libc.ts";

const IPPROTO_IP = 0;
const IPPROTO_IPV6 = 41;
const IP_TOS = 1;
const IP_TTL = 2;
const IP_MULTICAST_IF = 32;
const IP_MULTICAST_TTL = 33;
const IP_MULTICAST_LOOP = 34;
const IP_ADD_MEMBERSHIP = 35;
const IP_DROP_MEMBERSHIP = 36;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MULTICAST_IF = 17;
const IPV6_MULTICAST_HOPS = 18;
const IPV6_MULTICAST_LOOP = 19;
const IPV6_ADD_MEMBERSHIP = 20;
const IPV6_DROP_MEMBERSHIP = 21;
const IPV6_TCLASS = 67;
const IPV6_MINHOPCOUNT = 73;

/** Encodes a sockaddr_in / sockaddr_in6 (port 0 unless given, scope for link-local). */
export function sockaddr(
  address: string,
  options: { port?: number; scope?: number } = {},
): Uint8Array<ArrayBuffer> {
  const bytes = ipBytes(address);
  if (bytes.length === 4) {
    const out = new Uint8Array(16);
    const view = new DataView(out.buffer);
    view.setUint16(0, AF_INET, true);
    view.setUint16(2, options.port ?? 0, false);
    out.set(bytes, 4);
    return out;
  }
  const out = new Uint8Array(28);
  const view = new DataView(out.buffer);
  view.setUint16(0, AF_INET6, true);
  view.setUint16(2, options.port ?? 0, false);
  out.set(bytes, 8);
  view.setUint32(24, options.scope ?? 0, true);
  return out;
}

/** The address in a raw sockaddr_in / sockaddr_in6, or `undefined` for other families. */
export function sockaddrAddress(raw: Uint8Array): string | undefined {
  if (raw.length < 2) return undefined;
  const family = raw[0] | (raw[1] << 8);
  if (family === AF_INET && raw.length >= 8) return formatIp(raw.subarray(4, 8));
  if (family === AF_INET6 && raw.length >= 24) return formatIp(raw.subarray(8, 24));
  return undefined;
}

function isLinkLocal(address: string): boolean {
  return /^fe[89ab]/i.test(address);
}

/** A received packet: sender and bytes (IPv4: from the IP header on). */
export interface RawPacket {
  readonly from: string;
  readonly data: Uint8Array;
}

/** Options of {@link RawIpSocket.open}. */
export interface RawIpOptions {
  readonly family: 4 | 6;
  /** Interface to bind to, join on and send from. */
  readonly ifname: string;
  /** Source address of what we send; the kernel's choice when absent. */
  readonly source?: string;
  /** Receive timeout so the reader loop notices a close (ms). */
  readonly receiveTimeoutMs?: number;
}

function toDatagram(got: Datagram | undefined): RawPacket | undefined {
  if (!got) return undefined;
  const from = sockaddrAddress(got.from);
  return from === undefined ? undefined : { from, data: got.data };
}

/**
 * A raw IP socket pair for one protocol on one interface: one socket reads (unbound,
 * so it sees multicast and unicast), one sends (bound to the source address).
 */
export class RawIpSocket {
  readonly family: 4 | 6;
  readonly ifname: string;
  readonly ifindex: number;
  readonly #rx: number;
  readonly #tx: number;
  readonly #source?: string;
  #closed = false;
  #pending: Promise<unknown> = Promise.resolve();

  private constructor(options: RawIpOptions, rx: number, tx: number) {
    this.family = options.family;
    this.ifname = options.ifname;
    this.ifindex = ifNameToIndex(options.ifname);
    this.#rx = rx;
    this.#tx = tx;
    this.#source = options.source;
  }

  /** Opens the sockets for `protocol`; throws a SysError with a hint when not root. */
  static open(protocol: number, options: RawIpOptions): RawIpSocket {
    const domain = options.family === 4 ? AF_INET : AF_INET6;
    const ifindex = ifNameToIndex(options.ifname);
    const rx = socket(domain, SOCK_RAW, protocol);
    let tx = -1;
    try {
      tx = socket(domain, SOCK_RAW, protocol);
      const dev = new TextEncoder().encode(options.ifname + "\0");
      setsockopt(rx, SOL_SOCKET, SO_BINDTODEVICE, dev);
      setsockopt(tx, SOL_SOCKET, SO_BINDTODEVICE, dev);
      setReceiveTimeout(rx, options.receiveTimeoutMs ?? 500);
      setsockoptInt(tx, SOL_SOCKET, SO_RCVBUF, 256);
      if (options.family === 4) {
        setsockoptInt(tx, IPPROTO_IP, IP_TOS, 0xc0);
        setsockoptInt(tx, IPPROTO_IP, IP_TTL, 255);
        setsockoptInt(tx, IPPROTO_IP, IP_MULTICAST_TTL, 255);
        setsockoptInt(tx, IPPROTO_IP, IP_MULTICAST_LOOP, 0);
        setsockopt(
          tx,
          IPPROTO_IP,
          IP_MULTICAST_IF,
          mreqn("0.0.0.0", ifindex, { address: options.source ?? "0.0.0.0" }),
        );
      } else {
        setsockoptInt(tx, IPPROTO_IPV6, IPV6_TCLASS, 0xc0);
        setsockoptInt(tx, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 255);
        setsockoptInt(tx, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255);
        setsockoptInt(tx, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0);
        setsockoptInt(tx, IPPROTO_IPV6, IPV6_MULTICAST_IF, ifindex);
        setsockoptInt(rx, IPPROTO_IPV6, IPV6_MINHOPCOUNT, 255);
      }
      if (options.source) {
        bind(tx, sockaddr(options.source, { scope: isLinkLocal(options.source) ? ifindex : 0 }));
      }
    } catch (error) {
      close(rx);
      if (tx >= 0) close(tx);
      throw error;
    }
    return new RawIpSocket(options, rx, tx);
  }

  /** Joins a multicast group on this interface. */
  join(group: string): void {
    if (this.family === 4) {
      setsockopt(this.#rx, IPPROTO_IP, IP_ADD_MEMBERSHIP, mreqn(group, this.ifindex));
    } else {
      setsockopt(this.#rx, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, mreq6(group, this.ifindex));
    }
  }

  /** Leaves a multicast group (errors ignored: the socket is closing anyway). */
  leave(group: string): void {
    try {
      if (this.family === 4) {
        setsockopt(this.#rx, IPPROTO_IP, IP_DROP_MEMBERSHIP, mreqn(group, this.ifindex));
      } else {
        setsockopt(this.#rx, IPPROTO_IPV6, IPV6_DROP_MEMBERSHIP, mreq6(group, this.ifindex));
      }
    } catch { /* not joined */ }
  }

  /** Sends `payload` to `destination`; the kernel writes the IP header. */
  send(payload: Uint8Array<ArrayBuffer>, destination: string): void {
    const scope = isLinkLocal(destination) || destination.startsWith("ff02") ? this.ifindex : 0;
    sendto(this.#tx, payload, sockaddr(destination, { scope }));
  }

  /** The source address given at open, if any. */
  get source(): string | undefined {
    return this.#source;
  }

  /** Waits for one packet; `undefined` on timeout or after close. */
  async receive(): Promise<RawPacket | undefined> {
    if (this.#closed) return undefined;
    const pending = recvfrom(this.#rx, 65536);
    this.#pending = pending;
    const got = await pending;
    return this.#closed ? undefined : toDatagram(got);
  }

  /** One queued packet without waiting, or `undefined` when none is queued. */
  receiveNow(): RawPacket | undefined {
    if (this.#closed) return undefined;
    return toDatagram(recvfromNow(this.#rx, 65536));
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Closes both sockets. The reading socket is closed once a pending receive has
   * returned (within the receive timeout), so no thread reads a reused descriptor.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    close(this.#tx);
    await this.#pending.catch(() => undefined);
    close(this.#rx);
  }
}

/** `struct ip_mreqn { in_addr multiaddr; in_addr address; int ifindex; }` (12 bytes). */
export function mreqn(
  group: string,
  ifindex: number,
  options: { address?: string } = {},
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(12);
  out.set(ipBytes(group), 0);
  out.set(ipBytes(options.address ?? "0.0.0.0"), 4);
  new DataView(out.buffer).setInt32(8, ifindex, true);
  return out;
}

/** `struct ipv6_mreq { in6_addr multiaddr; int ifindex; }` (20 bytes). */
export function mreq6(group: string, ifindex: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(20);
  out.set(ipBytes(group), 0);
  new DataView(out.buffer).setInt32(16, ifindex, true);
  return out;
}
