import assert from "node:assert/strict";
import {
  attr,
  attrMap,
  decodeAck,
  decodeAttrs,
  decodeMessages,
  encodeAttrs,
  encodeMessage,
  NETLINK_ROUTE,
  NetlinkError,
  NetlinkSocket,
  NLM_F_DUMP,
  read,
} from "./netlink.ts";

Deno.test("attributes round-trip with padding, nesting and byte orders", () => {
  const bytes = encodeAttrs([
    attr.u8(1, 7),
    attr.be16(2, 8080),
    attr.str(3, "wlc"),
    attr.nested(4, [attr.u32(1, 42), attr.be32(2, 0xffffff00)]),
  ]);
  assert.equal(bytes.length % 4, 0);
  const attrs = decodeAttrs(bytes);
  assert.deepEqual(attrs.map((a) => [a.type, a.nested]), [[1, false], [2, false], [3, false], [
    4,
    true,
  ]]);
  const map = attrMap(bytes);
  assert.equal(read.u8(map.get(1)!), 7);
  assert.equal(read.be16(map.get(2)!), 8080);
  assert.equal(read.str(map.get(3)!), "wlc");
  const inner = attrMap(map.get(4)!);
  assert.equal(read.u32(inner.get(1)!), 42);
  assert.equal(read.be32(inner.get(2)!), 0xffffff00);
});

Deno.test("messages carry length, type, flags and sequence", () => {
  const bytes = encodeMessage({ type: 18, flags: 5, header: new Uint8Array([1, 2, 3]) }, 9, 0);
  assert.equal(bytes.length, 20);
  const [msg] = decodeMessages(bytes);
  assert.equal(msg.type, 18);
  assert.equal(msg.flags, 5);
  assert.equal(msg.seq, 9);
  assert.deepEqual([...msg.payload.subarray(0, 3)], [1, 2, 3]);
});

Deno.test("a route netlink dump lists the loopback link, and a bad request names errno", async () => {
  const nl = new NetlinkSocket(NETLINK_ROUTE);
  try {
    const ifinfomsg = new Uint8Array(16);
    const links = await nl.request(
      { type: 18, flags: NLM_F_DUMP, header: ifinfomsg },
      "dump links",
    );
    const names = links.map((l) => read.str(attrMap(l.payload.subarray(16)).get(3)!));
    assert.ok(names.includes("lo"), `links: ${names}`);
    // RTM_DELADDR of an address that is not there: the kernel answers EADDRNOTAVAIL.
    const ifaddrmsg = new Uint8Array([2, 32, 0, 0, 1, 0, 0, 0]);
    await assert.rejects(
      nl.request({
        type: 21,
        flags: 0,
        header: ifaddrmsg,
        attrs: [
          attr.bytes(2, new Uint8Array([203, 0, 113, 9])),
        ],
      }, "delete 203.0.113.9/32 from lo"),
      (error: unknown) =>
        error instanceof NetlinkError && /delete 203\.0\.113\.9\/32 from lo/.test(error.message),
    );
  } finally {
    nl.close();
  }
});

Deno.test("an error reply yields errno and the kernel's extended-ack text; errno 0 is an ACK", () => {
  // NLMSG_ERROR payload: -EINVAL, the capped original header, then NLMSGERR_ATTR_MSG.
  const original = new Uint8Array(16);
  const payload = new Uint8Array([
    0xea,
    0xff,
    0xff,
    0xff, // -22
    ...original,
    ...encodeAttrs([attr.str(1, "bad scheduler")]),
  ]);
  const msg = encodeMessage({ type: 2, flags: 0x100 | 0x200, header: payload }, 9);
  assert.deepEqual(decodeAck(decodeMessages(msg)[0]), { errno: 22, extack: "bad scheduler" });
  const ack = encodeMessage({ type: 2, flags: 0x100, header: new Uint8Array(20) }, 9);
  assert.deepEqual(decodeAck(decodeMessages(ack)[0]), { errno: 0 });
});

Deno.test("pre-encoded attributes make the same message as the attributes", () => {
  const attrs = [attr.u16(1, 80), attr.nested(2, [attr.u32(1, 7)])];
  const header = new Uint8Array([1, 2, 0, 0]);
  assert.deepEqual(
    encodeMessage({ type: 30, flags: 1, header, encoded: encodeAttrs(attrs) }, 4),
    encodeMessage({ type: 30, flags: 1, header, attrs }, 4),
  );
});

Deno.test("a batch sends many messages at once and names each failure; the others succeed", async () => {
  const nl = new NetlinkSocket(NETLINK_ROUTE);
  try {
    // RTM_GETLINK of lo (index 1) is answered; RTM_DELADDR of an absent address fails.
    const getLo = {
      type: 18,
      flags: 0,
      header: new Uint8Array([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
      what: "get lo",
    };
    const results = await nl.batch([
      getLo,
      {
        type: 21,
        flags: 0,
        header: new Uint8Array([2, 32, 0, 0, 1, 0, 0, 0]),
        attrs: [attr.bytes(2, new Uint8Array([203, 0, 113, 9]))],
        what: () => "delete 203.0.113.9/32 from lo",
      },
      getLo,
    ]);
    assert.equal(results.length, 3);
    assert.equal(results[0], undefined);
    assert.ok(results[1] instanceof NetlinkError, String(results[1]));
    assert.match(results[1].message, /delete 203\.0\.113\.9\/32 from lo/);
    assert.equal(results[2], undefined);
    assert.deepEqual(await nl.batch([]), []);
  } finally {
    nl.close();
  }
});
