import assert from "node:assert/strict";
import { PacketSocket, sockaddrLl } from "./packet.ts";

const root = Deno.uid?.() === 0;

Deno.test("sockaddr_ll carries family, protocol (big-endian), ifindex and the MAC", () => {
  const s = sockaddrLl(5, { protocol: 0x0806, mac: new Uint8Array([1, 2, 3, 4, 5, 6]) });
  assert.equal(s.length, 20);
  assert.deepEqual(Array.from(s.subarray(0, 8)), [17, 0, 0x08, 0x06, 5, 0, 0, 0]);
  assert.equal(s[11], 6);
  assert.deepEqual(Array.from(s.subarray(12, 18)), [1, 2, 3, 4, 5, 6]);
});

Deno.test(
  { name: "a frame sent on loopback through AF_PACKET is read back", ignore: !root },
  async () => {
    const ethertype = 0x88b5; // IEEE local experimental: nobody else uses it
    const sock = new PacketSocket("lo", { protocol: ethertype, receiveTimeoutMs: 300 });
    try {
      const frame = new Uint8Array(60);
      frame.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x88, 0xb5], 0);
      const marker = crypto.getRandomValues(new Uint8Array(8));
      frame.set(marker, 14);
      sock.send(frame);
      let found = false;
      for (let i = 0; i < 10 && !found; i++) {
        const got = await sock.receive();
        found = !!got && got.subarray(14, 22).every((b, j) => b === marker[j]);
      }
      assert.ok(found, "frame not read back");
    } finally {
      await sock.close();
    }
  },
);
