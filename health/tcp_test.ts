import assert from "node:assert/strict";
import { checkTcp } from "./tcp.ts";

Deno.test("tcp check passes on a listening port and says connect refused on a closed one", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepting = (async () => {
    for await (const conn of listener) conn.close();
  })();
  try {
    assert.deepEqual(await checkTcp({ host: "127.0.0.1", port }, { timeout: 1000 }), {
      ok: true,
      reason: "connected",
    });
  } finally {
    listener.close();
    await accepting.catch(() => {});
  }
  assert.deepEqual(await checkTcp({ host: "127.0.0.1", port }, { timeout: 1000 }), {
    ok: false,
    reason: "connect refused",
  });
});

Deno.test("tcp check works over IPv6 loopback", async () => {
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname: "::1", port: 0 });
  } catch {
    console.log("skipped: no IPv6 loopback here");
    return;
  }
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    const r = await checkTcp({ host: "::1", port }, { timeout: 1000 });
    assert.equal(r.ok, true);
  } finally {
    listener.close();
  }
});

Deno.test("a stopped tcp check reports stopped", async () => {
  const ac = new AbortController();
  ac.abort();
  const r = await checkTcp({ host: "127.0.0.1", port: 9 }, { timeout: 1000, signal: ac.signal });
  assert.deepEqual(r, { ok: false, reason: "check stopped" });
});
