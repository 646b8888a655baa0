import assert from "node:assert/strict";
import { productRunFlags, spawn, waitPort } from "./_process.ts";

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

Deno.test("productRunFlags are the run task's flags, with the V8 flags replaceable", () => {
  const json = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url)));
  const flags = productRunFlags();
  assert.ok(flags.length > 1 && flags.every((f) => json.tasks.run.command.includes(f)));
  assert.ok(flags.includes("--allow-ffi"));
  const v8 = flags.find((f) => f.startsWith("--v8-flags="));
  assert.ok(v8, "the run task ships V8 flags");
  assert.deepEqual(productRunFlags({ v8: "--max-semi-space-size=1" }), [
    "--v8-flags=--max-semi-space-size=1",
    ...flags.filter((f) => f !== v8),
  ]);
  assert.deepEqual(productRunFlags({ v8: "" }), flags.filter((f) => f !== v8));
});
