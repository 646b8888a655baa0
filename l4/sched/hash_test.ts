import assert from "node:assert/strict";
import { createScheduler, Dest } from "./mod.ts";
import {
  dhSlot,
  foldAddress,
  hash32,
  hsiphash,
  hsiphashU32,
  maglevTable,
  MH_TABLE_SIZE,
  shSlot,
} from "./hash.ts";

Deno.test("addresses fold to 32 bits like the kernel's addr_fold", () => {
  assert.equal(foldAddress("10.0.0.1"), 0x0a000001);
  assert.equal(foldAddress("255.255.255.255"), 0xffffffff);
  // IPv6: XOR of the four 32-bit words: 0x20010db8 ^ 0 ^ 0 ^ 0x00000001.
  assert.equal(foldAddress("2001:db8::1"), 0x20010db9);
});

Deno.test("hash_32 multiplies by the golden ratio and keeps the top bits", () => {
  assert.equal(hash32(0, 8), 0);
  assert.equal(hash32(1, 8), 0x61);
  assert.equal(hash32(2, 8), 0xc3);
  assert.equal(hash32(3, 8), 0x25); // 3 · 0x61c88647 = 0x1_2559_93d5
});

Deno.test("dh fills 256 slots round robin and hashes the destination address", () => {
  // 2654435761 = 0x9e3779b1: slot = low byte of addr · 0xb1.
  assert.equal(dhSlot("0.0.0.1"), 177);
  assert.equal(dhSlot("0.0.0.2"), 98);
  assert.equal(dhSlot("0.0.0.3"), 19);
  const [c, b, a] = [new Dest("C", 80), new Dest("B", 80), new Dest("A", 80)];
  const dh = createScheduler("dh");
  dh.update([c, b, a]); // slot i → [C, B, A][i % 3]
  const to = (address: string) => dh.pick({ destination: { address } })?.host;
  assert.equal(to("0.0.0.0"), "C");
  assert.equal(to("0.0.0.1"), "C"); // 177 % 3 = 0
  assert.equal(to("0.0.0.2"), "A"); // 98 % 3 = 2
  assert.equal(to("0.0.0.3"), "B"); // 19 % 3 = 1
  c.weight = 0; // weights do not reshape dh; a quiesced slot is no destination
  dh.update([c, b, a]);
  assert.equal(to("0.0.0.1"), undefined);
  assert.equal(to("0.0.0.2"), "A");
});

Deno.test("sh gives each destination weight consecutive slots and hashes the source", () => {
  const b = new Dest("B", 80, 1);
  const a = new Dest("A", 80, 2);
  const sh = createScheduler("sh");
  sh.update([b, a]); // slots: B A A B A A … (slot % 3 = 0 → B)
  const from = (address: string, port = 0) => sh.pick({ client: { address, port } })?.host;
  assert.equal(shSlot("0.0.0.1", 0), 97);
  assert.equal(from("0.0.0.0"), "B");
  assert.equal(from("0.0.0.1"), "A"); // 97 % 3 = 1
  assert.equal(from("0.0.0.2"), "B"); // 195 % 3 = 0
  assert.equal(from("0.0.0.3"), "A"); // 37 % 3 = 1
  assert.equal(from("0.0.0.0", 1), "B", "the port is ignored without sh-port");
});

Deno.test("sh-port adds the client port to the hashed value", () => {
  const b = new Dest("B", 80, 1);
  const a = new Dest("A", 80, 2);
  const sh = createScheduler("sh", { flags: ["sh-port"] });
  sh.update([b, a]);
  assert.equal(sh.pick({ client: { address: "0.0.0.0", port: 1 } })?.host, "A"); // slot 97
  assert.equal(sh.pick({ client: { address: "0.0.0.0", port: 0 } })?.host, "B");
});

Deno.test("sh without fallback drops a client whose server is quiesced; sh-fallback probes", () => {
  const b = new Dest("B", 80, 1);
  const a = new Dest("A", 80, 0); // weight 0 still takes one slot per turn: B A B A …
  const plain = createScheduler("sh");
  const fallback = createScheduler("sh", { flags: ["sh-fallback"] });
  plain.update([b, a]);
  fallback.update([b, a]);
  const client = { client: { address: "0.0.0.1" } }; // slot 97 → A
  assert.equal(plain.pick(client), undefined);
  // Probe offset 0: (97 + 0) + 97 = 194 → even slot → B.
  assert.equal(fallback.pick(client), b);
  assert.equal(fallback.pick({ client: { address: "0.0.0.0" } }), b);
});

Deno.test("hsiphash matches the kernel's 64-bit self-test vectors", () => {
  const k0 = 0x0706050403020100n;
  const k1 = 0x0f0e0d0c0b0a0908n;
  const input = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);
  assert.equal(hsiphash(input(0), k0, k1), 0x050fc4dc);
  assert.equal(hsiphash(input(4), k0, k1), 0x88d38328);
  assert.equal(hsiphash(input(8), k0, k1), 0x8d299a8e);
  assert.equal(hsiphash(input(12), k0, k1), 0x57b4d9a2);
});

Deno.test("the 32-bit hsiphash agrees with the byte version and the kernel vector", () => {
  // Kernel vector 4: bytes 00 01 02 03 = 0x03020100 little-endian.
  assert.equal(hsiphashU32(0x03020100, 0x07060504, 0x03020100, 0x0f0e0d0c, 0x0b0a0908), 0x88d38328);
  const bytes = new Uint8Array(4);
  const view = new DataView(bytes.buffer);
  for (const v of [0, 1, 0xffffffff, 0x0a000001, 0xdeadbeef, 2654435761]) {
    view.setUint32(0, v, true);
    assert.equal(
      hsiphashU32(v, 0, 2654435761, 0, 2654435761),
      hsiphash(bytes, 2654435761n, 2654435761n),
    );
  }
});

Deno.test("mh fills the 4093-slot table in proportion to weight", () => {
  const list = [new Dest("10.0.0.3", 80), new Dest("10.0.0.2", 80), new Dest("10.0.0.1", 80)];
  // Turns 1, 1, 2 per round: 1023 rounds fill 4092 slots, the next turn (first dest) the last.
  const table = maglevTable(list, [1, 1, 2]);
  const count = (d: Dest) => table.filter((t) => t === d).length;
  assert.equal(table.length, MH_TABLE_SIZE);
  assert.deepEqual(list.map(count), [1024, 1023, 2046]);
  assert.equal(maglevTable(list, [0, 0, 0]).filter(Boolean).length, 0);
});

Deno.test("mh keeps most clients on their server when another server leaves", () => {
  const list = [new Dest("10.0.0.3", 80), new Dest("10.0.0.2", 80), new Dest("10.0.0.1", 80)];
  const mh = createScheduler("mh");
  mh.update(list);
  const before = new Map<string, string>();
  for (let i = 0; i < 2000; i++) {
    const address = `192.168.${i >> 8}.${i & 255}`;
    before.set(address, mh.pick({ client: { address } })!.host);
  }
  const shares = [...before.values()].filter((h) => h === "10.0.0.2").length;
  assert.ok(shares > 500 && shares < 850, `about a third of clients on each server, got ${shares}`);
  mh.update([list[0], list[2]]);
  let kept = 0;
  let total = 0;
  for (const [address, host] of before) {
    if (host === "10.0.0.2") continue;
    total++;
    if (mh.pick({ client: { address } })!.host === host) kept++;
  }
  assert.ok(kept / total > 0.9, `clients of the remaining servers stay: ${kept}/${total}`);
});

Deno.test("mh quiescing keeps the table; mh-fallback sends those clients elsewhere", () => {
  const list = [new Dest("10.0.0.2", 80), new Dest("10.0.0.1", 80)];
  const plain = createScheduler("mh");
  const fallback = createScheduler("mh", { flags: ["mh-fallback"] });
  plain.update(list);
  fallback.update(list);
  const clients = Array.from({ length: 50 }, (_, i) => `172.16.0.${i}`);
  const owner = new Map(clients.map((c) => [c, plain.pick({ client: { address: c } })!.host]));
  list[0].weight = 0;
  plain.update(list);
  fallback.update(list);
  for (const c of clients) {
    const p = plain.pick({ client: { address: c } });
    const f = fallback.pick({ client: { address: c } });
    if (owner.get(c) === "10.0.0.2") {
      assert.equal(p, undefined);
      assert.equal(f?.host, "10.0.0.1");
    } else {
      assert.equal(p?.host, owner.get(c), "clients of the other server do not move");
    }
  }
});
