import assert from "node:assert/strict";
import { decodeFamily, decodeGenl, genlHeader, getFamilyRequest } from "./genl.ts";
import { attr, decodeMessages, encodeAttrs, encodeMessage } from "./netlink.ts";

Deno.test("CTRL_CMD_GETFAMILY for IPVS encodes as the kernel expects", () => {
  const bytes = encodeMessage(getFamilyRequest("IPVS"), 7, 0);
  assert.deepEqual(Array.from(bytes), [
    // nlmsghdr: len 32, type GENL_ID_CTRL (16), flags 0, seq 7, pid 0
    32,
    0,
    0,
    0,
    16,
    0,
    0,
    0,
    7,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    // genlmsghdr: cmd 3 (GETFAMILY), version 1, reserved
    3,
    1,
    0,
    0,
    // CTRL_ATTR_FAMILY_NAME (2): len 9 = 4 + "IPVS\0", padded to 12
    9,
    0,
    2,
    0,
    73,
    80,
    86,
    83,
    0,
    0,
    0,
    0,
  ]);
});

Deno.test("the controller's reply yields the dynamic family id and version", () => {
  const payload = new Uint8Array([
    ...genlHeader(1, 2),
    ...encodeAttrs([
      attr.u16(1, 32),
      attr.str(2, "IPVS"),
      attr.u32(3, 1),
      attr.u32(4, 0),
      attr.u32(5, 6),
    ]),
  ]);
  const msg = encodeMessage({ type: 16, flags: 0, header: payload }, 1);
  const [reply] = decodeMessages(msg);
  assert.equal(decodeGenl(reply).cmd, 1);
  assert.deepEqual(decodeFamily(reply), { id: 32, name: "IPVS", version: 1, maxAttr: 6 });
});

Deno.test("a controller reply without an id is an error, not a family", () => {
  const msg = encodeMessage({
    type: 16,
    flags: 0,
    header: new Uint8Array([...genlHeader(1, 2), ...encodeAttrs([attr.str(2, "IPVS")])]),
  }, 1);
  assert.throws(() => decodeFamily(decodeMessages(msg)[0]), /without id/);
});
