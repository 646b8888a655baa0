import assert from "node:assert/strict";
import {
  AF_INET,
  bind,
  close,
  getsockname,
  ifNameToIndex,
  recvfrom,
  recvfromNow,
  sendto,
  setReceiveTimeout,
  setThreadNice,
  SOCK_DGRAM,
  socket,
  SysError,
} from "./libc.ts";

function sockaddrIn(port: number, ip = [127, 0, 0, 1]): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(16);
  const view = new DataView(buf.buffer);
  view.setUint16(0, AF_INET, true);
  view.setUint16(2, port, false);
  buf.set(ip, 4);
  return buf;
}

Deno.test("a UDP datagram goes through libc sockets on loopback", async () => {
  const rx = socket(AF_INET, SOCK_DGRAM, 0);
  const tx = socket(AF_INET, SOCK_DGRAM, 0);
  try {
    bind(rx, sockaddrIn(0));
    const port = new DataView(getsockname(rx).buffer).getUint16(2, false);
    setReceiveTimeout(rx, 2000);
    assert.equal(recvfromNow(rx), undefined);
    sendto(tx, new TextEncoder().encode("ping"), sockaddrIn(port));
    const got = await recvfrom(rx);
    assert.equal(new TextDecoder().decode(got?.data), "ping");
  } finally {
    close(rx);
    close(tx);
  }
});

Deno.test("a failed call names errno and a missing interface names itself", () => {
  const fd = socket(AF_INET, SOCK_DGRAM, 0);
  try {
    bind(fd, sockaddrIn(1, [203, 0, 113, 1]));
    assert.fail("bind to a foreign address should fail");
  } catch (error) {
    assert.ok(error instanceof SysError);
    assert.equal(error.code, "EADDRNOTAVAIL");
  } finally {
    close(fd);
  }
  assert.equal(ifNameToIndex("lo"), 1);
  assert.throws(() => ifNameToIndex("nosuch0"), /interface "nosuch0" does not exist/);
});

Deno.test({
  name: "setThreadNice changes the nice value of the calling thread",
  ignore: Deno.uid?.() !== 0,
}, () => {
  // field 19 of /proc/thread-self/stat is the nice value (after the ")" of the name)
  const nice = () =>
    Number(Deno.readTextFileSync("/proc/thread-self/stat").split(")")[1].trim().split(" ")[16]);
  const before = nice();
  try {
    setThreadNice(before + 3);
    assert.equal(nice(), before + 3);
  } finally {
    setThreadNice(before);
  }
  assert.equal(nice(), before);
});
