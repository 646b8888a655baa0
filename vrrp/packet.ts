/**
 * VRRP advertisements on the wire: VRRPv2 (RFC 3768, with the simple-text password
 * keepalived still accepts) and VRRPv3 (RFC 5798, centisecond intervals, checksum over
 * the IPv4 or IPv6 pseudo-header), plus the receive-side validation of RFC 5798 §7.1.
 * Pure functions: no sockets, no clock.
 * @module
 */
import { formatIp, ipBytes } from "../config/address.ts";

/** IP protocol number of VRRP. */
export const VRRP_PROTO = 112;
/** The VRRP IPv4 multicast group. */
export const VRRP_GROUP4 = "224.0.0.18";
/** The VRRP IPv6 multicast group. */
export const VRRP_GROUP6 = "ff02::12";

/** One VRRP advertisement, version-independent. */
export interface Advert {
  readonly version: 2 | 3;
  readonly vrid: number;
  readonly priority: number;
  /** Advertisement interval in ms (v2 carries whole seconds, v3 centiseconds). */
  readonly intervalMs: number;
  /** The virtual addresses, canonical text, all of one family. */
  readonly addresses: readonly string[];
  /** v2 only: the simple-text password (at most 8 bytes); absent means no auth. */
  readonly password?: string;
}

/** Why a received packet was dropped (also the label of the error counters). */
export type RejectReason =
  | "truncated"
  | "ttl"
  | "version"
  | "type"
  | "checksum"
  | "vrid"
  | "auth"
  | "address_list"
  | "interval"
  | "family"
  | "own";

/** Every reject reason, for counters that start at zero. */
export const REJECT_REASONS: readonly RejectReason[] = [
  "truncated",
  "ttl",
  "version",
  "type",
  "checksum",
  "vrid",
  "auth",
  "address_list",
  "interval",
  "family",
  "own",
];

/** The Internet checksum (one's complement of the one's complement sum) of `parts`. */
export function internetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  for (const part of parts) {
    for (let i = 0; i + 1 < part.length; i += 2) sum += (part[i] << 8) | part[i + 1];
    if (part.length % 2) sum += part[part.length - 1] << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The pseudo-header VRRPv3 includes in its checksum (RFC 5798 §5.2.8). */
export function pseudoHeader(route: Route, length: number): Uint8Array {
  const s = ipBytes(route.src);
  const d = ipBytes(route.dst);
  if (s.length === 4) {
    const out = new Uint8Array(12);
    out.set(s, 0);
    out.set(d, 4);
    out[9] = VRRP_PROTO;
    out[10] = length >> 8;
    out[11] = length & 0xff;
    return out;
  }
  const out = new Uint8Array(40);
  out.set(s, 0);
  out.set(d, 16);
  new DataView(out.buffer).setUint32(32, length);
  out[39] = VRRP_PROTO;
  return out;
}

/** Where an advertisement travels: needed for the v3 checksum. */
export interface Route {
  readonly src: string;
  readonly dst: string;
}

/** Encodes `advert` as a VRRP message (without IP header), checksum filled in. */
export function encodeAdvert(advert: Advert, route: Route): Uint8Array<ArrayBuffer> {
  const addrs = advert.addresses.map((a) => ipBytes(a));
  const width = addrs[0]?.length ?? (ipBytes(route.src).length);
  if (advert.version === 3) {
    const out = new Uint8Array(8 + addrs.length * width);
    out[0] = 0x31;
    out[1] = advert.vrid;
    out[2] = advert.priority;
    out[3] = addrs.length;
    const cs = Math.min(0xfff, Math.max(1, Math.round(advert.intervalMs / 10)));
    out[4] = cs >> 8;
    out[5] = cs & 0xff;
    addrs.forEach((a, i) => out.set(a, 8 + i * width));
    const sum = internetChecksum(pseudoHeader(route, out.length), out);
    out[6] = sum >> 8;
    out[7] = sum & 0xff;
    return out;
  }
  const out = new Uint8Array(8 + addrs.length * 4 + 8);
  out[0] = 0x21;
  out[1] = advert.vrid;
  out[2] = advert.priority;
  out[3] = addrs.length;
  out[4] = advert.password === undefined ? 0 : 1;
  out[5] = Math.min(255, Math.max(1, Math.round(advert.intervalMs / 1000)));
  addrs.forEach((a, i) => out.set(a, 8 + i * 4));
  if (advert.password !== undefined) {
    out.set(new TextEncoder().encode(advert.password).subarray(0, 8), 8 + addrs.length * 4);
  }
  const sum = internetChecksum(out);
  out[6] = sum >> 8;
  out[7] = sum & 0xff;
  return out;
}

/** An IPv4 packet as received on a raw socket. */
export interface Ipv4Packet {
  readonly ttl: number;
  readonly protocol: number;
  readonly src: string;
  readonly dst: string;
  readonly payload: Uint8Array;
}

/** Splits an IPv4 packet into header fields and payload; `undefined` when malformed. */
export function parseIpv4(bytes: Uint8Array): Ipv4Packet | undefined {
  if (bytes.length < 20 || bytes[0] >> 4 !== 4) return undefined;
  const ihl = (bytes[0] & 0x0f) * 4;
  const total = (bytes[2] << 8) | bytes[3];
  if (ihl < 20 || bytes.length < ihl) return undefined;
  const end = Math.min(bytes.length, total >= ihl ? total : bytes.length);
  return {
    ttl: bytes[8],
    protocol: bytes[9],
    src: formatIp(bytes.subarray(12, 16)),
    dst: formatIp(bytes.subarray(16, 20)),
    payload: bytes.subarray(ihl, end),
  };
}

/** Encodes an IPv4 header + payload (used by tests and the flood tools). */
export function buildIpv4(
  payload: Uint8Array,
  options: { src: string; dst: string; ttl?: number; protocol?: number },
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(20 + payload.length);
  out[0] = 0x45;
  out[1] = 0xc0;
  out[2] = out.length >> 8;
  out[3] = out.length & 0xff;
  out[8] = options.ttl ?? 255;
  out[9] = options.protocol ?? VRRP_PROTO;
  out.set(ipBytes(options.src), 12);
  out.set(ipBytes(options.dst), 16);
  const sum = internetChecksum(out.subarray(0, 20));
  out[10] = sum >> 8;
  out[11] = sum & 0xff;
  out.set(payload, 20);
  return out;
}

/** What the receiver expects of its peers' advertisements. */
export interface Expectation {
  readonly version: 2 | 3;
  readonly vrid: number;
  /** Our configured interval; v2 drops a mismatch, v3 only reports it. */
  readonly intervalMs: number;
  /** Our virtual addresses (canonical text); a non-zero-priority advert must match. */
  readonly addresses: readonly string[];
  readonly password?: string;
  /** Our own source addresses: adverts from them are our own echoes. */
  readonly own?: readonly string[];
}

/** The outcome of decoding a received advertisement. */
export type Decoded =
  | { readonly ok: true; readonly advert: Advert; readonly intervalMismatch: boolean }
  | { readonly ok: false; readonly reason: RejectReason; readonly detail: string };

function reject(reason: RejectReason, detail: string): Decoded {
  return { ok: false, reason, detail };
}

/**
 * Decodes and validates a VRRP message received from `route.src` to `route.dst` with
 * the given TTL/hop limit, per RFC 5798 §7.1 (and RFC 3768 §7.1 for v2). Never throws.
 */
export function decodeAdvert(
  bytes: Uint8Array,
  context: Route & { readonly ttl: number },
  expect: Expectation,
): Decoded {
  if (expect.own?.includes(context.src)) return reject("own", "our own advertisement");
  if (context.ttl !== 255) return reject("ttl", `TTL ${context.ttl}, want 255`);
  if (bytes.length < 8) return reject("truncated", `${bytes.length} bytes`);
  const version = bytes[0] >> 4;
  const type = bytes[0] & 0x0f;
  if (version !== expect.version) {
    return reject("version", `version ${version}, configured ${expect.version}`);
  }
  if (type !== 1) return reject("type", `type ${type} is not an advertisement`);
  const count = bytes[3];
  const width = context.src.includes(":") ? 16 : 4;
  if (version === 2 && width === 16) return reject("family", "VRRPv2 is IPv4 only");
  const needed = 8 + count * width + (version === 2 ? 8 : 0);
  if (bytes.length < needed) {
    return reject("truncated", `${bytes.length} bytes, ${count} addresses need ${needed}`);
  }
  const message = bytes.subarray(0, needed);
  const sum = version === 3
    ? internetChecksum(pseudoHeader(context, message.length), message)
    : internetChecksum(message);
  if (sum !== 0) return reject("checksum", "checksum does not verify");
  const vrid = bytes[1];
  if (vrid !== expect.vrid) return reject("vrid", `VRID ${vrid}, configured ${expect.vrid}`);
  let intervalMs: number;
  let password: string | undefined;
  if (version === 3) {
    intervalMs = (((bytes[4] & 0x0f) << 8) | bytes[5]) * 10;
  } else {
    intervalMs = bytes[5] * 1000;
    const authType = bytes[4];
    const authData = bytes.subarray(8 + count * 4, 16 + count * 4);
    const end = authData.indexOf(0);
    const got = authType === 1
      ? new TextDecoder().decode(end < 0 ? authData : authData.subarray(0, end))
      : undefined;
    if (authType !== 0 && authType !== 1) return reject("auth", `auth type ${authType}`);
    if (got !== expect.password) {
      return reject(
        "auth",
        expect.password === undefined ? "unexpected password" : "wrong password",
      );
    }
    password = got;
  }
  const addresses: string[] = [];
  for (let i = 0; i < count; i++) {
    addresses.push(formatIp(bytes.subarray(8 + i * width, 8 + (i + 1) * width)));
  }
  const priority = bytes[2];
  if (priority !== 0 && !sameSet(addresses, expect.addresses)) {
    return reject(
      "address_list",
      `addresses ${addresses.join(",")} differ from ${expect.addresses.join(",")}`,
    );
  }
  const intervalMismatch = intervalMs !== expect.intervalMs;
  if (intervalMismatch && version === 2) {
    return reject("interval", `interval ${intervalMs}ms, configured ${expect.intervalMs}ms`);
  }
  const advert: Advert = { version, vrid, priority, intervalMs, addresses, password };
  return { ok: true, advert, intervalMismatch };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(b);
  return a.every((x) => set.has(x));
}
