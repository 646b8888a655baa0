/**
 * IP addresses, `host:port` endpoints and CIDR prefixes as written in appliance.yaml.
 * @module
 */

/** A parsed `host:port`; `text` is the canonical form (`[v6]:port` for IPv6). */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
  readonly text: string;
}

/** A parsed `address/prefix`. */
export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: 4 | 6;
  readonly text: string;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Returns 4 or 6 for a valid IP address literal, `undefined` otherwise. */
export function ipFamily(text: string): 4 | 6 | undefined {
  if (IPV4.test(text)) return 4;
  return parseIpv6(text) ? 6 : undefined;
}

/** Parses an IPv6 literal into eight 16-bit groups, or `undefined` if it is not one. */
export function parseIpv6(text: string): number[] | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length < 2) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === "") return [];
    const groups: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (i === pieces.length - 1 && IPV4.test(piece)) {
        const b = piece.split(".").map(Number);
        groups.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        groups.push(parseInt(piece, 16));
      } else {
        return undefined;
      }
    }
    return groups;
  };
  const head = parse(halves[0]);
  const tail = halves.length === 2 ? parse(halves[1]) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return undefined;
  return [...head, ...new Array(missing).fill(0), ...tail];
}

/** Returns the 4 or 16 bytes of an IP address literal; throws on an invalid one. */
export function ipBytes(text: string): Uint8Array {
  if (IPV4.test(text)) return new Uint8Array(text.split(".").map(Number));
  const groups = parseIpv6(text);
  if (!groups) throw new Error(`"${text}" is not an IP address; write e.g. 10.0.0.1 or fe80::1`);
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/** Formats 4 or 16 address bytes as text (IPv6 in its compressed form). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Canonical text of an IP address (IPv6 compressed and lower case). */
export function canonicalIp(text: string): string {
  return formatIp(ipBytes(text));
}

/**
 * Parses `host:port` (`[v6]:port` for IPv6). Returns an error sentence instead of
 * throwing, so the config loader can place it.
 */
export function parseEndpoint(text: string): Endpoint | string {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:\[\]]+):(\d+)$/.exec(text);
  if (!m) {
    return `"${text}" is not an address:port; write e.g. 127.0.0.1:8080 or [::1]:8080`;
  }
  const family = ipFamily(m[1]);
  if (!family) {
    return `"${
      m[1]
    }" is not an IP address; write a literal such as 127.0.0.1 or ::1 (names are not resolved)`;
  }
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return `port ${m[2]} is out of range; use 1-65535`;
  const host = canonicalIp(m[1]);
  return { host, port, family, text: family === 6 ? `[${host}]:${port}` : `${host}:${port}` };
}

/** Parses `address/prefix`; a bare address gets /32 or /128. Returns an error sentence on failure. */
export function parseCidr(text: string): Cidr | string {
  const [addr, prefixText, extra] = text.split("/");
  const family = ipFamily(addr);
  if (!family || extra !== undefined) {
    return `"${text}" is not an address/prefix; write e.g. 10.0.0.100/24`;
  }
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d+$/.test(prefixText ?? "0") || prefix > max) {
    return `prefix /${prefixText} is out of range for IPv${family}; use 0-${max}`;
  }
  const address = canonicalIp(addr);
  return { address, prefix, family, text: `${address}/${prefix}` };
}

/** True for 127.0.0.0/8 and ::1. */
export function isLoopback(host: string): boolean {
  return host.startsWith("127.") || host === "::1";
}

/** True for 0.0.0.0 and ::. */
export function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::";
}

/** True when `address` falls inside `network/prefix` (same family). */
export function inPrefix(address: string, network: string, prefix: number): boolean {
  const a = ipBytes(address);
  const n = ipBytes(network);
  if (a.length !== n.length) return false;
  for (let bit = 0; bit < prefix; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if ((a[byte] & mask) !== (n[byte] & mask)) return false;
  }
  return true;
}
