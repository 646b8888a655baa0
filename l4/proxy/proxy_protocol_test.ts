import assert from "node:assert/strict";
import { parseProxyHeader, plainAddress, proxyV1, proxyV2 } from "./proxy_protocol.ts";

const a = {
  protocol: "tcp" as const,
  sourceAddress: "::ffff:10.0.0.1",
  sourcePort: 40000,
  destAddress: "10.0.0.100",
  destPort: 80,
};

Deno.test("v1 is one text line with the client and the address it connected to", () => {
  assert.equal(new TextDecoder().decode(proxyV1(a)), "PROXY TCP4 10.0.0.1 10.0.0.100 40000 80\r\n");
  assert.equal(plainAddress("::ffff:127.0.0.1"), "127.0.0.1");
});

Deno.test("v2 is the signature, PROXY over TCP4, 12 address bytes", () => {
  const h = proxyV2(a);
  assert.equal(h.length, 28);
  assert.deepEqual([...h.subarray(12, 16)], [0x21, 0x11, 0, 12]);
  assert.deepEqual([...h.subarray(16, 20)], [10, 0, 0, 1]);
  assert.deepEqual([...h.subarray(24, 28)], [0x9c, 0x40, 0, 80]);
  assert.deepEqual(parseProxyHeader(h), {
    length: 28,
    addresses: { ...a, sourceAddress: "10.0.0.1" },
  });
});

Deno.test("v2 carries IPv6 addresses in 36 bytes", () => {
  const h = proxyV2({ ...a, sourceAddress: "2001:db8::1", destAddress: "2001:db8::2" });
  assert.equal(h.length, 52);
  assert.equal(h[13], 0x21);
  const parsed = parseProxyHeader(h);
  assert.equal(parsed?.addresses?.sourceAddress, "2001:db8:0:0:0:0:0:1");
  assert.equal(parsed?.addresses?.destPort, 80);
});
