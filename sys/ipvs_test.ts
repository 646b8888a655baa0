import assert from "node:assert/strict";
import {
  decodeDaemon,
  decodeDest,
  decodeService,
  encodeDaemon,
  encodeDest,
  encodeDestCommand,
  encodeService,
  encodeTimeouts,
  type IpvsDest,
  type IpvsService,
  readDefense,
  SVC_F,
  writeDefense,
} from "./ipvs.ts";
import { attr, encodeAttrs, read } from "./netlink.ts";

const svc: IpvsService = {
  family: 4,
  protocol: "tcp",
  address: "10.0.0.1",
  port: 80,
  scheduler: "wrr",
  flags: SVC_F.PERSISTENT,
  timeout: 300,
  netmask: 0xffffff00,
};

function bytes(a: ReturnType<typeof encodeService>): number[] {
  return Array.from(encodeAttrs([a]));
}

Deno.test("a full service nest has the uapi layout: AF u16, proto u16, 16-byte addr, be16 port", () => {
  assert.deepEqual(bytes(encodeService(svc, true)), [
    // IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED, len 4+8+8+20+8+8+12+8+8 = 84
    84,
    0,
    1,
    0x80,
    6,
    0,
    1,
    0,
    2,
    0,
    0,
    0, // AF = AF_INET (2)
    6,
    0,
    2,
    0,
    6,
    0,
    0,
    0, // PROTOCOL = TCP (6)
    20,
    0,
    3,
    0,
    10,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0, // ADDR, 16 bytes
    6,
    0,
    4,
    0,
    0,
    80,
    0,
    0, // PORT = 80 big-endian
    8,
    0,
    6,
    0,
    119,
    114,
    114,
    0, // SCHED_NAME "wrr\0"
    12,
    0,
    7,
    0,
    1,
    0,
    0,
    0,
    255,
    255,
    255,
    255, // FLAGS {flags=1, mask=~0}
    8,
    0,
    8,
    0,
    44,
    1,
    0,
    0, // TIMEOUT 300
    8,
    0,
    9,
    0,
    255,
    255,
    255,
    0, // NETMASK big-endian 255.255.255.0
  ]);
});

Deno.test("a fwmark service key carries AF and FWMARK only", () => {
  const key = { family: 6 as const, protocol: "tcp" as const, fwmark: 7 };
  assert.deepEqual(bytes(encodeService(key, false)), [
    20,
    0,
    1,
    0x80,
    6,
    0,
    1,
    0,
    10,
    0,
    0,
    0, // AF_INET6
    8,
    0,
    5,
    0,
    7,
    0,
    0,
    0, // FWMARK 7
  ]);
});

Deno.test("an IPv6 persistence netmask is a host-order prefix length", () => {
  const nest = encodeAttrs([
    encodeService({ ...svc, family: 6, address: "2001:db8::1", netmask: 64 }, true),
  ]);
  const tail = Array.from(nest.subarray(nest.length - 8));
  assert.deepEqual(tail, [8, 0, 9, 0, 64, 0, 0, 0]);
});

Deno.test("a tunnel destination carries type u8, be16 port and u16 checksum flags", () => {
  const dest: IpvsDest = {
    family: 4,
    address: "10.0.1.5",
    port: 3868,
    forward: "tun",
    weight: 2,
    upperThreshold: 100,
    lowerThreshold: 10,
    tunnel: { type: "gue", port: 6080, csum: "csum" },
  };
  assert.deepEqual(Array.from(encodeAttrs([encodeDest(dest, true)])), [
    96,
    0,
    2,
    0x80,
    20,
    0,
    1,
    0,
    10,
    0,
    1,
    5,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0, // ADDR
    6,
    0,
    2,
    0,
    0x0f,
    0x1c,
    0,
    0, // PORT 3868 big-endian
    6,
    0,
    11,
    0,
    2,
    0,
    0,
    0, // ADDR_FAMILY
    8,
    0,
    3,
    0,
    2,
    0,
    0,
    0, // FWD_METHOD tunnel
    8,
    0,
    4,
    0,
    2,
    0,
    0,
    0, // WEIGHT
    8,
    0,
    5,
    0,
    100,
    0,
    0,
    0, // U_THRESH
    8,
    0,
    6,
    0,
    10,
    0,
    0,
    0, // L_THRESH
    5,
    0,
    13,
    0,
    1,
    0,
    0,
    0, // TUN_TYPE gue
    6,
    0,
    14,
    0,
    0x17,
    0xc0,
    0,
    0, // TUN_PORT 6080 big-endian
    6,
    0,
    15,
    0,
    1,
    0,
    0,
    0, // TUN_FLAGS csum
  ]);
});

Deno.test("a deleted destination names only address, port and family", () => {
  const dest: IpvsDest = {
    family: 4,
    address: "10.0.1.2",
    port: 8080,
    forward: "dr",
    weight: 9,
    upperThreshold: 0,
    lowerThreshold: 0,
  };
  const out = encodeAttrs([encodeDest(dest, false)]);
  assert.equal(out.length, 4 + 20 + 8 + 8);
});

Deno.test("a dumped service decodes with flags, netmask and 64-bit stats", () => {
  const nest = encodeAttrs([
    attr.u16(1, 2),
    attr.u16(2, 17),
    attr.bytes(3, new Uint8Array([192, 0, 2, 1, ...new Array(12).fill(0)])),
    attr.be16(4, 53),
    attr.str(6, "sh"),
    attr.bytes(7, new Uint8Array([0x1b, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])),
    attr.u32(8, 300),
    attr.be32(9, 0xffffff00),
    attr.nested(12, [
      attr.u64(1, 5n),
      attr.u64(2, 12n),
      attr.u64(3, 11n),
      attr.u64(4, 5_000_000_000n),
      attr.u64(5, 900n),
      attr.u64(6, 1n),
    ]),
  ]);
  const s = decodeService(nest);
  assert.equal(s.protocol, "udp");
  assert.equal(s.address, "192.0.2.1");
  assert.equal(s.port, 53);
  assert.equal(s.scheduler, "sh");
  assert.equal(s.flags, 0x1b);
  assert.equal(s.timeout, 300);
  assert.equal(s.netmask, 0xffffff00);
  assert.equal(s.stats.conns, 5);
  assert.equal(s.stats.inBytes, 5_000_000_000);
  assert.equal(s.stats.cps, 1);
});

Deno.test("a dumped fwmark service has no address; old 32-bit stats decode too", () => {
  const nest = encodeAttrs([
    attr.u16(1, 10),
    attr.u32(5, 42),
    attr.str(6, "wlc"),
    attr.nested(10, [attr.u32(1, 3), attr.u64(4, 77n)]),
  ]);
  const s = decodeService(nest);
  assert.equal(s.fwmark, 42);
  assert.equal(s.family, 6);
  assert.equal(s.address, undefined);
  assert.equal(s.stats.conns, 3);
  assert.equal(s.stats.inBytes, 77);
});

Deno.test("a dumped destination decodes forward method, counters and tunnel", () => {
  const nest = encodeAttrs([
    attr.bytes(1, new Uint8Array([0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 0x10])),
    attr.be16(2, 443),
    attr.u32(3, 2),
    attr.u32(4, 5),
    attr.u32(5, 0),
    attr.u32(6, 0),
    attr.u32(7, 4),
    attr.u32(8, 6),
    attr.u32(9, 1),
    attr.u16(11, 10),
    attr.u8(13, 2),
    attr.u16(15, 0),
  ]);
  const d = decodeDest(nest);
  assert.equal(d.address, "2001:db8::10");
  assert.equal(d.port, 443);
  assert.equal(d.family, 6);
  assert.equal(d.forward, "tun");
  assert.deepEqual(d.tunnel, { type: "gre", port: 0, csum: "none" });
  assert.equal(d.weight, 5);
  assert.equal(d.activeConns, 4);
  assert.equal(d.inactiveConns, 6);
  assert.equal(d.persistentConns, 1);
});

Deno.test("sync daemon nests carry state, interface and sync id", () => {
  const full = encodeAttrs([encodeDaemon({ state: "backup", interface: "eth1", syncId: 9 }, true)]);
  const inner = full.subarray(4);
  assert.deepEqual(decodeDaemon(inner), { state: "backup", interface: "eth1", syncId: 9 });
  assert.equal(
    encodeAttrs([encodeDaemon({ state: "master", interface: "x", syncId: 1 }, false)]).length,
    12,
  );
});

Deno.test("timeouts are three top-level u32 attributes in seconds", () => {
  const out = encodeAttrs(encodeTimeouts({ tcp: 900, tcpFin: 120, udp: 300 }));
  assert.equal(out.length, 24);
  assert.equal(read.u32(out.subarray(4, 8)), 900);
  assert.equal(out[2], 4);
  assert.equal(out[10], 5);
  assert.equal(out[18], 6);
});

Deno.test("defense sysctls are read, and written only when they differ", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/drop_entry`, "0\n");
    await Deno.writeTextFile(`${dir}/amemthresh`, "1024\n");
    assert.deepEqual(await readDefense(dir), { drop_entry: 0, amemthresh: 1024 });
    assert.deepEqual(await writeDefense({ drop_entry: 2, amemthresh: 1024 }, dir), ["drop_entry"]);
    assert.deepEqual(await readDefense(dir), { drop_entry: 2, amemthresh: 1024 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the fast destination encoder writes the same bytes as the generic one", () => {
  const key = { family: 4 as const, protocol: "tcp" as const, address: "10.0.0.1", port: 80 };
  const base: IpvsDest = {
    family: 4,
    address: "10.0.1.2",
    port: 8080,
    forward: "nat",
    weight: 7,
    upperThreshold: 3,
    lowerThreshold: 1,
  };
  const cases: IpvsDest[] = [
    base,
    { ...base, forward: "dr" },
    { ...base, forward: "tun", tunnel: { type: "ipip", port: 0, csum: "none" } },
    { ...base, forward: "tun", tunnel: { type: "gue", port: 6080, csum: "remcsum" } },
    { ...base, family: 6, address: "2001:db8::2" },
  ];
  for (const d of cases) {
    for (const full of [true, false]) {
      assert.deepEqual(
        Array.from(encodeDestCommand(key, d, { full })),
        Array.from(encodeAttrs([encodeService(key, false), encodeDest(d, full)])),
        `${d.forward} ${d.tunnel?.type ?? ""} full=${full}`,
      );
    }
  }
  const mark = { family: 4 as const, protocol: "tcp" as const, fwmark: 9 };
  assert.deepEqual(
    Array.from(encodeDestCommand(mark, base)),
    Array.from(encodeAttrs([encodeService(mark, false), encodeDest(base, true)])),
  );
});
