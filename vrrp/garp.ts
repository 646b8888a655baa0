/**
 * Frames that tell a LAN where a virtual address now lives: gratuitous ARP for IPv4
 * and unsolicited neighbour advertisements for IPv6, plus the VRRP virtual MAC and a
 * parser for ARP frames (tests and the benchmark watch the wire with it). Pure.
 * @module
 */
import { formatIp, ipBytes } from "../config/address.ts";
import { internetChecksum } from "./packet.ts";

const BROADCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** The VRRP virtual MAC: 00-00-5E-00-01-{VRID} (IPv4) or 00-00-5E-00-02-{VRID} (IPv6). */
export function virtualMac(vrid: number, family: 4 | 6 = 4): Uint8Array<ArrayBuffer> {
  return new Uint8Array([0x00, 0x00, 0x5e, 0x00, family === 4 ? 0x01 : 0x02, vrid & 0xff]);
}

/** Formats a MAC as `aa:bb:cc:dd:ee:ff`. */
export function formatMac(mac: Uint8Array): string {
  return Array.from(mac.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join(":");
}

/** An ARP packet (request or reply) inside an Ethernet frame. */
export function arpFrame(
  op: 1 | 2,
  options: {
    srcMac: Uint8Array;
    srcIp: string;
    dstMac?: Uint8Array;
    targetMac?: Uint8Array;
    targetIp: string;
  },
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(42);
  out.set(options.dstMac ?? BROADCAST, 0);
  out.set(options.srcMac.subarray(0, 6), 6);
  out[12] = 0x08;
  out[13] = 0x06;
  const arp = out.subarray(14);
  arp.set([0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, op]);
  arp.set(options.srcMac.subarray(0, 6), 8);
  arp.set(ipBytes(options.srcIp), 14);
  arp.set(options.targetMac ?? new Uint8Array(6), 18);
  arp.set(ipBytes(options.targetIp), 24);
  return out;
}

/** A gratuitous ARP request announcing that `ip` is at `mac` (what keepalived sends). */
export function garpFrame(mac: Uint8Array, ip: string): Uint8Array<ArrayBuffer> {
  return arpFrame(1, { srcMac: mac, srcIp: ip, targetIp: ip, targetMac: BROADCAST });
}

/** A decoded ARP frame. */
export interface ArpInfo {
  readonly op: number;
  readonly senderMac: string;
  readonly senderIp: string;
  readonly targetIp: string;
  /** Sender and target address are the same: an announcement. */
  readonly gratuitous: boolean;
}

/** Decodes an Ethernet frame carrying IPv4-over-Ethernet ARP; `undefined` otherwise. */
export function parseArp(frame: Uint8Array): ArpInfo | undefined {
  if (frame.length < 42 || frame[12] !== 0x08 || frame[13] !== 0x06) return undefined;
  const arp = frame.subarray(14);
  if (
    arp[0] !== 0 || arp[1] !== 1 || arp[2] !== 8 || arp[3] !== 0 || arp[4] !== 6 || arp[5] !== 4
  ) {
    return undefined;
  }
  const senderIp = formatIp(arp.subarray(14, 18));
  const targetIp = formatIp(arp.subarray(24, 28));
  return {
    op: (arp[6] << 8) | arp[7],
    senderMac: formatMac(arp.subarray(8, 14)),
    senderIp,
    targetIp,
    gratuitous: senderIp === targetIp,
  };
}

/**
 * An unsolicited neighbour advertisement (RFC 4861 §7.2.6) for `ip` at `mac`, sent
 * from `ip` to all-nodes ff02::1 with hop limit 255 and the override flag.
 */
export function unsolicitedNaFrame(mac: Uint8Array, ip: string): Uint8Array<ArrayBuffer> {
  const target = ipBytes(ip);
  const all = ipBytes("ff02::1");
  const icmp = new Uint8Array(32);
  icmp[0] = 136; // neighbour advertisement
  icmp[4] = 0x20; // override
  icmp.set(target, 8);
  icmp[24] = 2; // target link-layer address option
  icmp[25] = 1;
  icmp.set(mac.subarray(0, 6), 26);
  const pseudo = new Uint8Array(40);
  pseudo.set(target, 0);
  pseudo.set(all, 16);
  new DataView(pseudo.buffer).setUint32(32, icmp.length);
  pseudo[39] = 58;
  const sum = internetChecksum(pseudo, icmp);
  icmp[2] = sum >> 8;
  icmp[3] = sum & 0xff;
  const out = new Uint8Array(14 + 40 + icmp.length);
  out.set([0x33, 0x33, 0x00, 0x00, 0x00, 0x01], 0);
  out.set(mac.subarray(0, 6), 6);
  out[12] = 0x86;
  out[13] = 0xdd;
  const ip6 = out.subarray(14);
  ip6[0] = 0x60;
  new DataView(ip6.buffer, ip6.byteOffset).setUint16(4, icmp.length);
  ip6[6] = 58;
  ip6[7] = 255;
  ip6.set(target, 8);
  ip6.set(all, 24);
  ip6.set(icmp, 40);
  return out;
}
