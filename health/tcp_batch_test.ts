import assert from "node:assert/strict";
import { errnoReason, sockaddr, TcpBatchChecker, tcpChecker } from "./tcp_batch.ts";

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

Deno.test("batched tcp checks pass on listening ports and refuse on closed ones, keeping one socket per target until closed", async () => {
  const listeners = Array.from(
    { length: 5 },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const accepting = listeners.map((l) =>
    (async () => {
      for await (const conn of l) conn.close();
    })().catch(() => {})
  );
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  const batch = new TcpBatchChecker();
  try {
    const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
    const before = openFds();
    assert.equal(
      (await batch.check({ host: "127.0.0.1", port: ports[0] }, { timeout: 1000 })).reason,
      "connected",
    );
    assert.equal(batch.idle, 1);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        batch.check(
          { host: "127.0.0.1", port: i % 10 === 0 ? closedPort : ports[i % 5] },
          { timeout: 1000 },
        )),
    );
    const reasons = results.map((r) => r.reason);
    assert.equal(reasons.filter((r) => r === "connected").length, 180);
    assert.equal(reasons.filter((r) => r === "connect refused").length, 20);
    assert.equal(batch.pending, 0);
    // One disconnected socket per reachable target is kept for its next check.
    assert.equal(batch.idle, 5);
    // The accept loops above close their side a moment later.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(openFds(), before + 5, `fds ${before} → ${openFds()}`);
    // Checks again reuse the kept sockets: still right, no more sockets.
    const again = await Promise.all(
      ports.map((port) => batch.check({ host: "127.0.0.1", port }, { timeout: 1000 })),
    );
    assert.deepEqual(again.map((r) => r.reason), ports.map(() => "connected"));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(openFds(), before + 5, `fds ${before} → ${openFds()}`);
    // A removed target's socket is closed; closing the checker closes the rest.
    batch.release({ host: "127.0.0.1", port: ports[0] });
    assert.equal(batch.idle, 4);
    assert.equal(openFds(), before + 4, `fds ${before} → ${openFds()}`);
    batch.close();
    assert.equal(batch.idle, 0);
    assert.equal(openFds(), before, `fds ${before} → ${openFds()}`);
  } finally {
    batch.close();
    for (const l of listeners) l.close();
    await Promise.all(accepting);
  }
});

Deno.test("a kept socket reports a target that stopped listening as refused, and a released target's check in flight closes its socket", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = (async () => {
    for await (const conn of listener) conn.close();
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  const target = { host: "127.0.0.1", port };
  const batch = new TcpBatchChecker();
  const before = openFds();
  let closed = false;
  try {
    for (let i = 0; i < 3; i++) {
      assert.equal((await batch.check(target, { timeout: 1000 })).reason, "connected");
      assert.equal(batch.idle, 1);
    }
    listener.close();
    closed = true;
    await accepting;
    assert.equal((await batch.check(target, { timeout: 1000 })).reason, "connect refused");
    assert.equal(batch.idle, 0);
    assert.equal(openFds(), before - 1); // the listener is gone too
    const again = Deno.listen({ hostname: "127.0.0.1", port });
    try {
      assert.equal((await batch.check(target, { timeout: 1000 })).reason, "connected");
      assert.equal(batch.idle, 1);
      const aborted = new AbortController();
      aborted.abort();
      assert.equal(
        (await batch.check(target, { timeout: 1000, signal: aborted.signal })).reason,
        "check stopped",
      );
      const late = batch.check(target, { timeout: 1000 });
      batch.release(target);
      assert.equal((await late).reason, "connected");
      assert.equal(batch.idle, 0);
      assert.equal(openFds(), before);
    } finally {
      again.close();
    }
  } finally {
    batch.close();
    if (!closed) listener.close();
  }
});

Deno.test("batched tcp checks reach IPv6 loopback", async () => {
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname: "::1", port: 0 });
  } catch {
    console.log("skipped: no IPv6 loopback here");
    return;
  }
  const batch = new TcpBatchChecker();
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    assert.equal((await batch.check({ host: "::1", port }, { timeout: 1000 })).reason, "connected");
  } finally {
    batch.close();
    listener.close();
  }
});

Deno.test("sockaddr encodes family, port and address", () => {
  assert.deepEqual(
    [...sockaddr("127.0.0.1", 8080)],
    [2, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
  );
  const v6 = sockaddr("::1", 443);
  assert.equal(v6.length, 28);
  assert.deepEqual([...v6.subarray(0, 4)], [10, 0, 0x01, 0xbb]);
  assert.equal(v6[23], 1);
});

Deno.test("connect errors have the same words as the Deno.connect checker", () => {
  assert.equal(errnoReason(111), "connect refused");
  assert.equal(errnoReason(104), "connection reset");
  assert.match(errnoReason(101), /^unreachable: /);
  assert.match(errnoReason(99), /^connect failed: /);
});

Deno.test("the shared checker falls back to Deno.connect without FFI and works with it", async () => {
  const { check, close } = tcpChecker();
  try {
    const r = await check({ host: "127.0.0.1", port: 9 }, { timeout: 500 });
    assert.deepEqual(r, { ok: false, reason: "connect refused" });
  } finally {
    close();
  }
});

Deno.test("a checked server accepts no connection: the check ends the handshake with an RST before its last ACK", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let accepted = 0;
  const accepting = (async () => {
    for await (const conn of listener) {
      accepted++;
      conn.close();
    }
  })().catch(() => {});
  const batch = new TcpBatchChecker();
  try {
    // Fresh sockets and kept ones alike: every check passes, none reaches accept().
    for (let i = 0; i < 5; i++) {
      assert.equal(
        (await batch.check({ host: "127.0.0.1", port }, { timeout: 1000 })).reason,
        "connected",
      );
    }
    // Past the 200 ms a held-back ACK would wait: still nothing was accepted.
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(accepted, 0);
  } finally {
    batch.close();
    listener.close();
    await accepting;
  }
});
