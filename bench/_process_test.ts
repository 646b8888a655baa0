import assert from "node:assert/strict";
import { spawn, waitPort } from "./_process.ts";

Deno.test("waitPort resolves once a port listens and names it when nothing does", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  await waitPort(port, 1000);
  listener.close();
  await assert.rejects(waitPort(port, 200), new RegExp(`127.0.0.1:${port} after 200 ms`));
});

Deno.test("spawn starts a command that can be waited for", async () => {
  const child = spawn(["true"]);
  assert.equal((await child.status).code, 0);
});
