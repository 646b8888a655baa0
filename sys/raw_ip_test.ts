import assert from "node:assert/strict";
import { mreq6, mreqn, RawIpSocket, sockaddr, sockaddrAddress } from "./raw_ip.ts";

const root = Deno.uid?.() === 0;

Deno.test("ip_mreqn is group, local address, ifindex in 12 bytes", () => {
  assert.deepEqual(
    Array.from(mreqn("224.0.0.18", 3, { address: "10.0.0.1" })),
    [224, 0, 0, 18, 10, 0, 0, 1, 3, 0, 0, 0],
  );
  const m6 = mreq6("ff02::12", 7);
  assert.equal(m6.length, 20);
  assert.deepEqual(Array.from(m6.subarray(0, 2)), [0xff, 0x02]);
  assert.equal(m6[15], 0x12);
  assert.equal(m6[16], 7);
});

Deno.test("sockaddr encodes and decodes IPv4 and IPv6 with scope", () => {
  const v4 = sockaddr("10.1.2.3", { port: 80 });
  assert.equal(v4.length, 16);
  assert.deepEqual(Array.from(v4.subarray(2, 8)), [0, 80, 10, 1, 2, 3]);
  assert.equal(sockaddrAddress(v4), "10.1.2.3");
  const v6 = sockaddr("fe80::1", { scope: 4 });
  assert.equal(v6.length, 28);
  assert.equal(v6[24], 4);
  assert.equal(sockaddrAddress(v6), "fe80::1");
  assert.equal(sockaddrAddress(new Uint8Array([17, 0, 0, 0])), undefined);
});

Deno.test({
  name: "a raw protocol-112 packet sent on loopback arrives with TTL 255 and TOS 0xc0",
  ignore: !root,
}, async () => {
  const sock = RawIpSocket.open(112, {
    family: 4,
    ifname: "lo",
    source: "127.0.0.1",
    receiveTimeoutMs: 300,
  });
  try {
    assert.equal(sock.receiveNow(), undefined);
    // an advert-sized payload with a marker no real router sends (VRID 0)
    const payload = new Uint8Array([0x31, 0, 0, 0, 0, 100, 0xab, 0xcd]);
    sock.send(payload, "127.0.0.1");
    let got;
    for (let i = 0; i < 10 && !got; i++) {
      const p = await sock.receive();
      if (p && p.data.length >= 28 && p.data[21] === 0 && p.data[26] === 0xab) got = p;
    }
    assert.ok(got, "packet not received");
    assert.equal(got.from, "127.0.0.1");
    assert.equal(got.data[8], 255, "TTL");
    assert.equal(got.data[1], 0xc0, "TOS");
    assert.equal(got.data[9], 112, "protocol");
  } finally {
    await sock.close();
  }
});

Deno.test({ name: "opening on a missing interface names it", ignore: !root }, () => {
  assert.throws(
    () => RawIpSocket.open(112, { family: 4, ifname: "nosuch9" }),
    /interface "nosuch9" does not exist/,
  );
});
