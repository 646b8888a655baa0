/**
 * Bad packets on the wire — wrong checksum, TTL 64, unknown version, truncated, wrong
 * VRID, mismatched address list, and a flood of them — are dropped and counted, and
 * change no router's state.
 */
import assert from "node:assert/strict";
import { canUseNetns } from "./netns.ts";
import { Proc } from "./vrrp_lab.ts";
import { labTest, sleep, startPair, VIP, vrrpConfig } from "./vrrp_harness.ts";
import { buildIpv4, encodeAdvert } from "../vrrp/packet.ts";

const ok = await canUseNetns();

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** An Ethernet frame to 224.0.0.18 from `mac` carrying `ip`. */
function frame(mac: string, ip: Uint8Array): string {
  const eth = new Uint8Array(14 + ip.length);
  eth.set([0x01, 0x00, 0x5e, 0x00, 0x00, 0x12], 0);
  eth.set(mac.split(":").map((h) => parseInt(h, 16)), 6);
  eth[12] = 0x08;
  eth.set(ip, 14);
  return toHex(eth);
}

labTest(
  "bad adverts and a flood of them are dropped, counted by reason, and change no state",
  async (lab) => {
    const [a, b] = await startPair(lab, [vrrpConfig(200), vrrpConfig(100)]);
    await a.waitRole("master", 5000);
    await b.waitRole("backup", 5000);
    const before = [a.roles().length, b.roles().length];

    const src = lab.routers[2].ip;
    const route = { src, dst: "224.0.0.18" };
    const strong = {
      version: 3 as const,
      vrid: 51,
      priority: 254,
      intervalMs: 200,
      addresses: [VIP],
    };
    const good = encodeAdvert(strong, route);
    const badSum = good.slice();
    badSum[6] ^= 0xff;
    const v2 = encodeAdvert({ ...strong, version: 2, intervalMs: 1000 }, route);
    const otherVrid = encodeAdvert({ ...strong, vrid: 52 }, route);
    const otherVips = encodeAdvert({ ...strong, addresses: ["10.77.0.222"] }, route);
    const mac = await lab.mac(2);
    const frames = [
      frame(mac, buildIpv4(good, { ...route, ttl: 64 })),
      frame(mac, buildIpv4(badSum, route)),
      frame(mac, buildIpv4(v2, route)),
      frame(mac, buildIpv4(good.subarray(0, 6), route)),
      frame(mac, buildIpv4(otherVrid, route)),
      frame(mac, buildIpv4(otherVips, route)),
    ];
    const path = `${lab.dir}/frames.json`;
    await Deno.writeTextFile(path, JSON.stringify({ frames, repeat: 500 }));
    const injector = new Proc(lab.routers[2].ns, [
      Deno.execPath(),
      "run",
      "-A",
      new URL("./vrrp_inject.ts", import.meta.url).pathname,
      "eth0",
      path,
    ]);
    const status = await injector.done;
    assert.equal(status.code, 0, injector.stderr);
    assert.equal(injector.lines[0], "3000");
    await sleep(1000);

    assert.deepEqual([a.roles().length, b.roles().length], before, "a bad packet changed a role");
    assert.equal(a.roles().at(-1)?.role, "master");
    assert.equal(b.roles().at(-1)?.role, "backup");
    for (const p of [a, b]) {
      const errors = (await p.status())[0].errors as Record<string, number>;
      for (const reason of ["ttl", "checksum", "version", "truncated", "vrid", "address_list"]) {
        assert.ok(errors[reason] > 0, `${reason} not counted: ${JSON.stringify(errors)}`);
      }
      const total = Object.values(errors).reduce((x, y) => x + y, 0);
      assert.ok(total <= 3000, `counted ${total} of 3000 sent`);
    }
    assert.deepEqual(await lab.holders(VIP), [0]);
  },
  { ignore: !ok, routers: 3 },
);
