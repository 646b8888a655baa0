import assert from "node:assert/strict";
import { decodeAddress, Rtnl } from "./rtnl.ts";
import { ifNameToIndex } from "./libc.ts";
import { canUseNetns, inNetnsChild, runFileInNetns } from "../tests/netns.ts";

const inChild = inNetnsChild(import.meta.url);
const canNetns = !inChild && await canUseNetns();

Deno.test({
  name: "rtnetlink address and link operations pass inside a fresh network namespace",
  ignore: !canNetns,
}, async () => {
  // the real test below runs in a namespace of its own, so no host interface is touched
  const r = await runFileInNetns(import.meta.url, { prefix: "frt" });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /addresses are added, listed and removed .* ok/);
});

Deno.test("an RTM_NEWADDR payload decodes to family, prefix, ifindex and address", () => {
  const payload = new Uint8Array([
    2,
    24,
    0x80,
    0,
    7,
    0,
    0,
    0, // ifaddrmsg: AF_INET /24 flags scope ifindex 7
    8,
    0,
    2,
    0,
    192,
    0,
    2,
    9, // IFA_LOCAL 192.0.2.9
  ]);
  const a = decodeAddress({ type: 20, flags: 0, seq: 0, payload });
  assert.deepEqual(a, {
    ifindex: 7,
    family: 4,
    address: "192.0.2.9",
    prefix: 24,
    flags: 0x80,
    scope: 0,
    label: undefined,
  });
});

Deno.test({
  name: "addresses are added, listed and removed through rtnetlink; the link state is read",
  ignore: !inChild,
  sanitizeResources: false,
}, async () => {
  const name = "fva0";
  const ip = (args: string[]) =>
    new Deno.Command("ip", { args, stdout: "null", stderr: "null" }).output();
  await ip(["link", "add", name, "type", "veth", "peer", "name", "fvb0"]);
  const rtnl = new Rtnl();
  try {
    const index = ifNameToIndex(name);
    assert.equal((await rtnl.link(index))?.up, false);
    await ip(["link", "set", name, "up"]);
    await ip(["link", "set", "fvb0", "up"]);
    const link = await rtnl.link(index);
    assert.equal(link?.name, name);
    assert.equal(link?.mac?.length, 6);
    assert.equal(await rtnl.addAddress(index, { address: "192.0.2.10", prefix: 24 }), true);
    assert.equal(await rtnl.addAddress(index, { address: "192.0.2.10", prefix: 24 }), false);
    assert.equal(await rtnl.addAddress(index, { address: "2001:db8::10", prefix: 64 }), true);
    const listed = await rtnl.addresses(index);
    assert.ok(listed.some((a) => a.address === "192.0.2.10" && a.prefix === 24));
    const v6 = listed.find((a) => a.address === "2001:db8::10");
    assert.ok(v6, "IPv6 address listed");
    assert.equal(await rtnl.deleteAddress(index, { address: "192.0.2.10", prefix: 24 }), true);
    assert.equal(await rtnl.deleteAddress(index, { address: "192.0.2.10", prefix: 24 }), false);
    const after = await rtnl.addresses(index);
    assert.ok(!after.some((a) => a.address === "192.0.2.10"));
    assert.ok((await rtnl.links()).some((l) => l.index === index));
    assert.equal(await rtnl.link(999999), undefined);
  } finally {
    rtnl.close();
    await ip(["link", "del", name]);
  }
});
