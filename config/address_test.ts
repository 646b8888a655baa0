import assert from "node:assert/strict";
import {
  canonicalIp,
  formatIp,
  inPrefix,
  ipBytes,
  ipFamily,
  parseCidr,
  parseEndpoint,
} from "./address.ts";

Deno.test("ipFamily tells IPv4 from IPv6 and refuses names", () => {
  assert.equal(ipFamily("10.0.0.1"), 4);
  assert.equal(ipFamily("::1"), 6);
  assert.equal(ipFamily("fe80::1:2"), 6);
  assert.equal(ipFamily("::ffff:10.0.0.1"), 6);
  assert.equal(ipFamily("256.0.0.1"), undefined);
  assert.equal(ipFamily("localhost"), undefined);
  assert.equal(ipFamily("1::2::3"), undefined);
});

Deno.test("IPv6 addresses are compressed canonically", () => {
  assert.equal(canonicalIp("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
  assert.equal(canonicalIp("0:0:0:0:0:0:0:1"), "::1");
  assert.equal(formatIp(ipBytes("10.1.2.3")), "10.1.2.3");
});

Deno.test("parseEndpoint reads host:port for both families and explains mistakes", () => {
  assert.deepEqual(parseEndpoint("127.0.0.1:80"), {
    host: "127.0.0.1",
    port: 80,
    family: 4,
    text: "127.0.0.1:80",
  });
  assert.equal((parseEndpoint("[::1]:8080") as { text: string }).text, "[::1]:8080");
  assert.match(parseEndpoint("127.0.0.1") as string, /not an address:port/);
  assert.match(parseEndpoint("127.0.0.1:70000") as string, /out of range/);
  assert.match(parseEndpoint("example.com:80") as string, /not an IP address/);
});

Deno.test("parseCidr accepts bare addresses and checks the prefix", () => {
  assert.equal((parseCidr("10.0.0.100/24") as { text: string }).text, "10.0.0.100/24");
  assert.equal((parseCidr("10.0.0.100") as { prefix: number }).prefix, 32);
  assert.match(parseCidr("10.0.0.1/33") as string, /out of range/);
  assert.match(parseCidr("nope/3") as string, /not an address\/prefix/);
});

Deno.test("inPrefix matches networks bit by bit", () => {
  assert.equal(inPrefix("10.0.0.77", "10.0.0.0", 24), true);
  assert.equal(inPrefix("10.0.1.77", "10.0.0.0", 24), false);
  assert.equal(inPrefix("fe80::5", "fe80::", 64), true);
  assert.equal(inPrefix("10.0.0.1", "fe80::", 64), false);
});
