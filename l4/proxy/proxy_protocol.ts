/**
 * PROXY protocol headers (HAProxy's proxy-protocol.txt, versions 1 and 2) that the
 * userspace plane sends to a server first, so the server sees the client's address.
 * @module
 */
import { ipBytes } from "../../config/address.ts";

/** Both ends of the client's connection as the proxy saw them. */
export interface ProxyAddresses {
  readonly protocol: "tcp" | "udp";
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destAddress: string;
  readonly destPort: number;
}

/** The v2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
export const V2_SIGNATURE = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);

/** Strips the `::ffff:` prefix a dual-stack socket puts on IPv4 peers. */
export function plainAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

function familyOf(address: string): 4 | 6 {
  return address.includes(":") ? 6 : 4;
}

/** A v1 header line, e.g. `PROXY TCP4 10.0.0.1 10.0.0.100 40000 80\r\n`. */
export function proxyV1(a: ProxyAddresses): Uint8Array {
  const src = plainAddress(a.sourceAddress);
  const dst = plainAddress(a.destAddress);
  const fam = familyOf(src) === 4 && familyOf(dst) === 4 ? "TCP4" : "TCP6";
  const line = familyOf(src) !== familyOf(dst)
    ? "PROXY UNKNOWN\r\n"
    : `PROXY ${fam} ${src} ${dst} ${a.sourcePort} ${a.destPort}\r\n`;
  return new TextEncoder().encode(line);
}

/** A binary v2 header with command PROXY and the addresses. */
export function proxyV2(a: ProxyAddresses): Uint8Array {
  const src = plainAddress(a.sourceAddress);
  const dst = plainAddress(a.destAddress);
  if (familyOf(src) !== familyOf(dst)) {
    const local = new Uint8Array(16);
    local.set(V2_SIGNATURE);
    local[12] = 0x20; // version 2, LOCAL
    return local;
  }
  const v4 = familyOf(src) === 4;
  const addrLen = v4 ? 12 : 36;
  const out = new Uint8Array(16 + addrLen);
  out.set(V2_SIGNATURE);
  out[12] = 0x21; // version 2, PROXY
  out[13] = (v4 ? 0x10 : 0x20) | (a.protocol === "udp" ? 0x02 : 0x01);
  const view = new DataView(out.buffer);
  view.setUint16(14, addrLen);
  const width = v4 ? 4 : 16;
  out.set(ipBytes(src), 16);
  out.set(ipBytes(dst), 16 + width);
  view.setUint16(16 + 2 * width, a.sourcePort);
  view.setUint16(18 + 2 * width, a.destPort);
  return out;
}

/** Parses a v1 or v2 header at the start of `data` (for tests and demo servers). */
export function parseProxyHeader(
  data: Uint8Array,
): { addresses?: ProxyAddresses; length: number } | undefined {
  if (data.length >= 16 && V2_SIGNATURE.every((b, i) => data[i] === b)) {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const len = view.getUint16(14);
    if (data.length < 16 + len) return undefined;
    if ((data[12] & 0x0f) === 0) return { length: 16 + len };
    const v4 = (data[13] >> 4) === 1;
    const width = v4 ? 4 : 16;
    const fmt = (b: Uint8Array) =>
      v4 ? [...b].join(".") : Array.from(
        { length: 8 },
        (_, i) => ((b[2 * i] << 8) | b[2 * i + 1]).toString(16),
      ).join(":");
    return {
      length: 16 + len,
      addresses: {
        protocol: (data[13] & 0x0f) === 2 ? "udp" : "tcp",
        sourceAddress: fmt(data.subarray(16, 16 + width)),
        destAddress: fmt(data.subarray(16 + width, 16 + 2 * width)),
        sourcePort: view.getUint16(16 + 2 * width),
        destPort: view.getUint16(18 + 2 * width),
      },
    };
  }
  const text = new TextDecoder().decode(data.subarray(0, Math.min(data.length, 108)));
  const end = text.indexOf("\r\n");
  if (!text.startsWith("PROXY ") || end < 0) return undefined;
  const parts = text.slice(0, end).split(" ");
  if (parts[1] === "UNKNOWN") return { length: end + 2 };
  return {
    length: end + 2,
    addresses: {
      protocol: "tcp",
      sourceAddress: parts[2],
      destAddress: parts[3],
      sourcePort: Number(parts[4]),
      destPort: Number(parts[5]),
    },
  };
}
