import assert from "node:assert/strict";
import { formatMac, garpFrame, parseArp, unsolicitedNaFrame, virtualMac } from "./garp.ts";
import { internetChecksum } from "./packet.ts";

const MAC = new Uint8Array([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);

Deno.test("a gratuitous ARP announces the VIP from our MAC to broadcast", () => {
  const f = garpFrame(MAC, "10.0.0.100");
  assert.equal(f.length, 42);
  assert.equal(formatMac(f.subarray(0, 6)), "ff:ff:ff:ff:ff:ff");
  assert.deepEqual(parseArp(f), {
    op: 1,
    senderMac: "02:11:22:33:44:55",
    senderIp: "10.0.0.100",
    targetIp: "10.0.0.100",
    gratuitous: true,
  });
});

Deno.test("parseArp ignores frames that are not Ethernet/IPv4 ARP", () => {
  assert.equal(parseArp(new Uint8Array(42)), undefined);
  assert.equal(parseArp(garpFrame(MAC, "10.0.0.1").subarray(0, 30)), undefined);
});

Deno.test("an unsolicited NA goes to all-nodes with hop limit 255, override set and a valid checksum", () => {
  const f = unsolicitedNaFrame(MAC, "2001:db8::53");
  assert.equal(formatMac(f.subarray(0, 6)), "33:33:00:00:00:01");
  const ip6 = f.subarray(14);
  assert.equal(ip6[6], 58);
  assert.equal(ip6[7], 255);
  const icmp = ip6.subarray(40);
  assert.equal(icmp[0], 136);
  assert.equal(icmp[4] & 0x20, 0x20);
  const pseudo = new Uint8Array(40);
  pseudo.set(ip6.subarray(8, 40), 0);
  new DataView(pseudo.buffer).setUint32(32, icmp.length);
  pseudo[39] = 58;
  assert.equal(internetChecksum(pseudo, icmp), 0);
  assert.deepEqual(icmp.subarray(26, 32), MAC);
});

Deno.test("the virtual MAC is 00:00:5e:00:01:VRID (IPv4) and 00:00:5e:00:02:VRID (IPv6)", () => {
  assert.equal(formatMac(virtualMac(51)), "00:00:5e:00:01:33");
  assert.equal(formatMac(virtualMac(7, 6)), "00:00:5e:00:02:07");
});
