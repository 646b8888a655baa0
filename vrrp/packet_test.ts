import assert from "node:assert/strict";
import {
  type Advert,
  buildIpv4,
  decodeAdvert,
  encodeAdvert,
  type Expectation,
  internetChecksum,
  parseIpv4,
} from "./packet.ts";
import {
  hex,
  V2_PASS,
  V2_PASS_RELEASE,
  V3_IPV4,
  V3_IPV4_RELEASE,
  V3_IPV6,
} from "./testdata/keepalived.ts";

const V2_EXPECT: Expectation = {
  version: 2,
  vrid: 51,
  intervalMs: 1000,
  addresses: ["10.77.0.100", "10.77.0.101"],
  password: "secret1",
};
const V3_EXPECT: Expectation = {
  version: 3,
  vrid: 52,
  intervalMs: 500,
  addresses: ["10.77.0.110"],
};

function decodeIpv4(bytes: Uint8Array, expect: Expectation) {
  const ip = parseIpv4(bytes)!;
  return decodeAdvert(ip.payload, { src: ip.src, dst: ip.dst, ttl: ip.ttl }, expect);
}

/** The IPv6 fixture split as a raw IPv6 socket would deliver it (payload + hop limit). */
function v6Parts(): { payload: Uint8Array; src: string; dst: string; ttl: number } {
  const b = hex(V3_IPV6);
  return { payload: b.subarray(40), src: "fe80::54de:5fff:fe4e:2b02", dst: "ff02::12", ttl: b[7] };
}

Deno.test("a keepalived VRRPv2 advert with a password decodes to its fields", () => {
  const d = decodeIpv4(hex(V2_PASS), V2_EXPECT);
  assert.ok(d.ok, JSON.stringify(d));
  assert.deepEqual(d.advert, {
    version: 2,
    vrid: 51,
    priority: 150,
    intervalMs: 1000,
    addresses: ["10.77.0.100", "10.77.0.101"],
    password: "secret1",
  });
});

Deno.test("a keepalived VRRPv2 shutdown advert carries priority 0", () => {
  const d = decodeIpv4(hex(V2_PASS_RELEASE), V2_EXPECT);
  assert.ok(d.ok);
  assert.equal(d.advert.priority, 0);
});

Deno.test("a keepalived VRRPv3 IPv4 advert decodes with the pseudo-header checksum", () => {
  const d = decodeIpv4(hex(V3_IPV4), V3_EXPECT);
  assert.ok(d.ok, JSON.stringify(d));
  assert.equal(d.advert.priority, 120);
  assert.equal(d.advert.intervalMs, 500);
  assert.deepEqual(d.advert.addresses, ["10.77.0.110"]);
  assert.equal(d.intervalMismatch, false);
  const release = decodeIpv4(hex(V3_IPV4_RELEASE), V3_EXPECT);
  assert.ok(release.ok);
  assert.equal(release.advert.priority, 0);
});

Deno.test("a keepalived VRRPv3 IPv6 advert decodes with the IPv6 pseudo-header", () => {
  const p = v6Parts();
  const d = decodeAdvert(p.payload, p, {
    version: 3,
    vrid: 53,
    intervalMs: 1000,
    addresses: ["2001:db8::53", "fe80::53"],
  });
  assert.ok(d.ok, JSON.stringify(d));
  assert.deepEqual(d.advert.addresses, ["fe80::53", "2001:db8::53"]);
  assert.equal(d.advert.priority, 110);
});

Deno.test("our encoder reproduces keepalived's bytes for v2 and v3 (IPv4 and IPv6)", () => {
  const v2 = hex(V2_PASS).subarray(20);
  const mine2 = encodeAdvert({
    version: 2,
    vrid: 51,
    priority: 150,
    intervalMs: 1000,
    addresses: ["10.77.0.100", "10.77.0.101"],
    password: "secret1",
  }, { src: "10.77.0.1", dst: "224.0.0.18" });
  assert.deepEqual(mine2, v2);
  const v3 = hex(V3_IPV4).subarray(20);
  const mine3 = encodeAdvert({
    version: 3,
    vrid: 52,
    priority: 120,
    intervalMs: 500,
    addresses: ["10.77.0.110"],
  }, { src: "10.77.0.1", dst: "224.0.0.18" });
  assert.deepEqual(mine3, v3);
  const p = v6Parts();
  const mine6 = encodeAdvert({
    version: 3,
    vrid: 53,
    priority: 110,
    intervalMs: 1000,
    addresses: ["fe80::53", "2001:db8::53"],
  }, p);
  assert.deepEqual(mine6, p.payload);
});

Deno.test("encode then decode returns the same advert", () => {
  const cases: Advert[] = [
    { version: 3, vrid: 7, priority: 254, intervalMs: 100, addresses: ["192.0.2.1", "192.0.2.2"] },
    { version: 3, vrid: 255, priority: 0, intervalMs: 40950, addresses: ["192.0.2.9"] },
    { version: 2, vrid: 1, priority: 1, intervalMs: 3000, addresses: ["198.51.100.7"] },
  ];
  for (const advert of cases) {
    const route = { src: "10.0.0.1", dst: "224.0.0.18" };
    const bytes = encodeAdvert(advert, route);
    const d = decodeAdvert(bytes, { ...route, ttl: 255 }, {
      version: advert.version,
      vrid: advert.vrid,
      intervalMs: advert.intervalMs,
      addresses: advert.addresses,
    });
    assert.ok(d.ok, JSON.stringify(d));
    assert.deepEqual(d.advert, { ...advert, password: undefined });
  }
});

Deno.test("bad packets are rejected with their reason", () => {
  const good = hex(V3_IPV4);
  const flip = good.slice();
  flip[good.length - 1] ^= 1;
  assert.deepEqual(reason(decodeIpv4(flip, V3_EXPECT)), "checksum");
  const ip = parseIpv4(good)!;
  const ctx = { src: ip.src, dst: ip.dst };
  assert.equal(reason(decodeAdvert(ip.payload, { ...ctx, ttl: 64 }, V3_EXPECT)), "ttl");
  assert.equal(
    reason(decodeAdvert(ip.payload.subarray(0, 10), { ...ctx, ttl: 255 }, V3_EXPECT)),
    "truncated",
  );
  assert.equal(
    reason(decodeAdvert(ip.payload.subarray(0, 5), { ...ctx, ttl: 255 }, V3_EXPECT)),
    "truncated",
  );
  const v4 = ip.payload.slice();
  v4[0] = 0x41;
  assert.equal(reason(decodeAdvert(v4, { ...ctx, ttl: 255 }, V3_EXPECT)), "version");
  assert.equal(reason(decodeIpv4(good, { ...V3_EXPECT, vrid: 9 })), "vrid");
  assert.equal(
    reason(decodeIpv4(good, { ...V3_EXPECT, addresses: ["10.77.0.111"] })),
    "address_list",
  );
  assert.equal(reason(decodeIpv4(hex(V2_PASS), { ...V2_EXPECT, password: "other" })), "auth");
  assert.equal(reason(decodeIpv4(hex(V2_PASS), { ...V2_EXPECT, password: undefined })), "auth");
  assert.equal(reason(decodeIpv4(hex(V2_PASS), { ...V2_EXPECT, intervalMs: 2000 })), "interval");
  assert.equal(reason(decodeIpv4(hex(V2_PASS), V3_EXPECT)), "version");
  assert.equal(reason(decodeIpv4(good, { ...V3_EXPECT, own: ["10.77.0.1"] })), "own");
});

Deno.test("a v3 interval mismatch is accepted and reported, a v2 one is dropped", () => {
  const d = decodeIpv4(hex(V3_IPV4), { ...V3_EXPECT, intervalMs: 1000 });
  assert.ok(d.ok);
  assert.equal(d.intervalMismatch, true);
});

Deno.test("a priority-0 advert is accepted even when its address list differs", () => {
  const d = decodeIpv4(hex(V3_IPV4_RELEASE), { ...V3_EXPECT, addresses: ["10.9.9.9"] });
  assert.ok(d.ok);
});

Deno.test("random garbage never throws and is never accepted", () => {
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < 5000; i++) {
    const b = new Uint8Array(Math.floor(rand() * 60));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(rand() * 256);
    const d = decodeAdvert(b, { src: "10.0.0.2", dst: "224.0.0.18", ttl: 255 }, V3_EXPECT);
    assert.equal(d.ok, false);
  }
});

Deno.test("buildIpv4 writes a header whose checksum verifies and parseIpv4 reads it back", () => {
  const payload = new Uint8Array([1, 2, 3]);
  const pkt = buildIpv4(payload, { src: "10.0.0.1", dst: "224.0.0.18", ttl: 64 });
  assert.equal(internetChecksum(pkt.subarray(0, 20)), 0);
  const back = parseIpv4(pkt)!;
  assert.equal(back.ttl, 64);
  assert.equal(back.src, "10.0.0.1");
  assert.deepEqual(back.payload, payload);
});

function reason(d: ReturnType<typeof decodeAdvert>): string {
  return d.ok ? "accepted" : d.reason;
}
