import assert from "node:assert/strict";
import { loadConfigText } from "../config/load.ts";
import { startDemoBackends } from "./backends.ts";

Deno.test("demo backends name themselves and report cache hits and misses", async () => {
  const loaded = loadConfigText(
    "pools:\n  html: { servers: [{ address: 127.0.0.1:18101 }, { address: 10.0.0.9:80 }] }\n",
    { localAddresses: () => [] },
  );
  assert.ok(loaded.ok);
  const demo = startDemoBackends(loaded.model);
  try {
    assert.deepEqual(demo.backends.map((b) => b.name), ["html-1"]);
    const first = await fetch("http://127.0.0.1:18101/index.html");
    assert.equal(first.headers.get("x-served-by"), "html-1");
    assert.equal(first.headers.get("x-cache"), "MISS");
    await first.body?.cancel();
    const second = await fetch("http://127.0.0.1:18101/index.html");
    assert.equal(second.headers.get("x-cache"), "HIT");
    assert.match(await second.text(), /html-1 served GET \/index.html/);
    const health = await fetch("http://127.0.0.1:18101/healthz");
    assert.equal(health.status, 200);
    await health.body?.cancel();
    assert.deepEqual(demo.backends[0].counts, { requests: 2, hits: 1 });
  } finally {
    await demo.close();
  }
});

Deno.test("a stopped demo backend refuses connections until started again", async () => {
  const loaded = loadConfigText("pools:\n  a: { servers: [{ address: 127.0.0.1:18102 }] }\n", {
    localAddresses: () => [],
  });
  assert.ok(loaded.ok);
  const demo = startDemoBackends(loaded.model);
  try {
    const [backend] = demo.backends;
    await backend.stop();
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: 18102 }));
    backend.start();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: 18102 });
    conn.close();
  } finally {
    await demo.close();
  }
});
