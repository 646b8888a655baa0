/**
 * AF_PACKET sockets: whole Ethernet frames in and out of one interface, for
 * gratuitous ARP, IPv6 unsolicited neighbour advertisements, and for tests that
 * watch the wire.
 * @module
 */
import {
  AF_PACKET,
  bind,
  close,
  ifNameToIndex,
  recvfrom,
  sendto,
  setReceiveTimeout,
  SOCK_RAW,
  socket,
} from "./libc.ts";

/** EtherTypes. */
export const ETH_P_ALL = 0x0003;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;

function htons(v: number): number {
  return ((v & 0xff) << 8) | ((v >> 8) & 0xff);
}

/** Encodes a `struct sockaddr_ll` (20 bytes) for `ifindex`, destination `mac` optional. */
export function sockaddrLl(
  ifindex: number,
  options: { protocol?: number; mac?: Uint8Array } = {},
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(20);
  const view = new DataView(out.buffer);
  view.setUint16(0, AF_PACKET, true);
  view.setUint16(2, options.protocol ?? 0, false);
  view.setInt32(4, ifindex, true);
  if (options.mac) {
    out[11] = options.mac.length;
    out.set(options.mac.subarray(0, 8), 12);
  }
  return out;
}

/** An AF_PACKET socket bound to one interface and EtherType. */
export class PacketSocket {
  readonly ifindex: number;
  readonly #fd: number;
  readonly #protocol: number;
  #closed = false;
  #pending: Promise<unknown> = Promise.resolve();

  /** Opens a socket on `ifname` for frames of `protocol` (ETH_P_ALL for every frame). */
  constructor(ifname: string, options: { protocol?: number; receiveTimeoutMs?: number } = {}) {
    this.ifindex = ifNameToIndex(ifname);
    this.#protocol = options.protocol ?? ETH_P_ALL;
    this.#fd = socket(AF_PACKET, SOCK_RAW, htons(this.#protocol));
    try {
      bind(this.#fd, sockaddrLl(this.ifindex, { protocol: this.#protocol }));
      setReceiveTimeout(this.#fd, options.receiveTimeoutMs ?? 500);
    } catch (error) {
      close(this.#fd);
      throw error;
    }
  }

  /** Sends one whole Ethernet frame (destination MAC taken from its first 6 bytes). */
  send(frame: Uint8Array<ArrayBuffer>): void {
    sendto(
      this.#fd,
      frame,
      sockaddrLl(this.ifindex, { protocol: this.#protocol, mac: frame.subarray(0, 6) }),
    );
  }

  /** One received frame, or `undefined` after the receive timeout or close. */
  async receive(): Promise<Uint8Array | undefined> {
    if (this.#closed) return undefined;
    const pending = recvfrom(this.#fd, 65536);
    this.#pending = pending;
    const got = await pending;
    return this.#closed || !got ? undefined : got.data;
  }

  /** Closes the socket once a pending receive has returned. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pending.catch(() => undefined);
    close(this.#fd);
  }
}
