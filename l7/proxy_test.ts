import assert from "node:assert/strict";
import { errorResponse, Upstreams } from "./proxy.ts";

Deno.test("error responses are short, say why, and close when asked", () => {
  const text = new TextDecoder().decode(
    errorResponse(503, "no server of pool html is available", { close: true }),
  );
  const [head, body] = text.split("\r\n\r\n");
  assert.match(head, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
  assert.match(head, /connection: close/);
  assert.equal(body, "fulcrum: no server of pool html is available\n");
  assert.match(head, new RegExp(`content-length: ${body.length}`));
  const open = new TextDecoder().decode(errorResponse(404, "no rule matches", { close: false }));
  assert.doesNotMatch(open, /connection: close/);
});

Deno.test("idle server connections are reused newest first and capped per server", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of listener) accepted.push(c);
  })();
  const ups = new Upstreams(1);
  const server = { address: `127.0.0.1:${port}`, host: "127.0.0.1", port };
  try {
    const a = await ups.open(server as never, 1000);
    const b = await ups.open(server as never, 1000);
    assert.equal(ups.opened, 2);
    ups.give(a);
    ups.give(b); // over the cap of 1: closed
    assert.equal(ups.idle, 1);
    assert.equal(ups.take(server.address), a);
    assert.equal(ups.take(server.address), undefined);
    a.conn.close();
    await assert.rejects(ups.open({ ...server, port: 1 } as never, 1000));
  } finally {
    ups.close();
    listener.close();
    await accepting.catch(() => {});
    for (const c of accepted) c.close();
  }
});
