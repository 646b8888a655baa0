/**
 * VRRP packets captured with tcpdump from keepalived v2.2 running in a network
 * namespace (IPv4 packets from the IP header on; the IPv6 packets from the IPv6
 * header on). Source: 10.77.0.1 (IPv4), fe80::54de:5fff:fe4e:2b02 (IPv6).
 * @module
 */

/** VRRPv2, VRID 51, priority 150, 1 s, auth PASS "secret1", VIPs 10.77.0.100 and .101. */
export const V2_PASS = "45c0002c00010000ff70d0400a4d0001e0000012" +
  "213396020101c5190a4d00640a4d00657365637265743100";

/** The same instance releasing on shutdown: priority 0. */
export const V2_PASS_RELEASE = "45c0002c00030000ff70d03e0a4d0001e0000012" +
  "2133000201015b1a0a4d00640a4d00657365637265743100";

/** VRRPv3 over IPv4, VRID 52, priority 120, 50 cs, VIP 10.77.0.110. */
export const V3_IPV4 = "45c0002000010000ff70d04c0a4d0001e0000012" +
  "31347801003261000a4d006e";

/** The same instance releasing on shutdown: priority 0. */
export const V3_IPV4_RELEASE = "45c0002000080000ff70d0450a4d0001e0000012" +
  "313400010032d9000a4d006e";

/** VRRPv3 over IPv6 (whole IPv6 packet), VRID 53, priority 110, 100 cs, fe80::53 and 2001:db8::53. */
export const V3_IPV6 = "6c099b40002870fffe8000000000000054de5ffffe4e2b02" +
  "ff020000000000000000000000000012" +
  "31356e0200645727fe80000000000000000000000000005320010db8000000000000000000000053";

/** Decodes a hex fixture into bytes. */
export function hex(text: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}
