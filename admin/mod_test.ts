import assert from "node:assert/strict";
import { Appliance } from "../appliance.ts";
import { createLogger } from "../log.ts";
import type { Subsystem } from "../subsystem.ts";
import { freePort } from "../tests/cli.ts";

const quiet = createLogger({ write: () => {} });

/** A subsystem with one route and one metric, as the real ones add theirs. */
function probe(): Subsystem {
  let applied = 0;
  return {
    name: "probe",
    start: () => Promise.resolve(),
    apply: () => {
      applied++;
      return Promise.resolve();
    },
    stop: () => Promise.resolve(),
    status: () => ({ state: "running", applied }),
    routes: (app) => {
      app.get("/api/v1/probe", (c) => c.json({ applied }));
    },
    metrics: () =>
      "# HELP probe_applied x\n# TYPE probe_applied gauge\nprobe_applied " + applied + "\n",
  };
}

async function start(extra = "") {
  const dir = await Deno.makeTempDir();
  const port = freePort();
  const path = `${dir}/appliance.yaml`;
  await Deno.writeTextFile(
    path,
    `admin: { listen: 127.0.0.1:${port}${extra} }\npools: { p: { servers: [] } }\n`,
  );
  const appliance = await Appliance.start(path, { subsystems: () => [probe()], log: quiet });
  return { dir, path, base: `http://127.0.0.1:${port}`, appliance };
}

Deno.test("the admin API serves health, status, metrics, the page and subsystem routes", async () => {
  const { dir, base, appliance } = await start();
  try {
    assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: "ok" });
    const status = await (await fetch(`${base}/api/v1/status`)).json();
    assert.equal(status.config.hash, appliance.model.source.hash);
    assert.deepEqual(status.subsystems, { probe: { state: "running", applied: 0 } });
    assert.deepEqual(status.reloads, { ok: 0, failed: 0, last: null });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^fulcrum_config_reloads_total\{result="ok"\} 0$/m);
    assert.match(metrics, /^process_resident_memory_bytes \d+$/m);
    assert.match(metrics, /^probe_applied 0$/m);
    assert.match(
      metrics,
      new RegExp(`fulcrum_config_info\\{path=".*",hash="${appliance.model.source.hash}"\\} 1`),
    );
    assert.deepEqual(await (await fetch(`${base}/api/v1/probe`)).json(), { applied: 0 });
    const page = await fetch(`${base}/`);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await page.text(), /<title>Fulcrum<\/title>/);
    const missing = await fetch(`${base}/api/v1/nothing`);
    assert.equal(missing.status, 404);
    assert.deepEqual((await missing.json()).error.code, "not_found");
  } finally {
    await appliance.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("POST /api/v1/reload applies a good file and refuses a bad one with details", async () => {
  const { dir, base, appliance, path } = await start();
  try {
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(
      path,
      text.replace("servers: []", "servers: [{ address: 127.0.0.1:9 }]"),
    );
    const ok = await fetch(`${base}/api/v1/reload`, { method: "POST" });
    assert.equal(ok.status, 200);
    assert.deepEqual((await ok.json()).changes, ["~ pool p", "+ server p 127.0.0.1:9"]);

    await Deno.writeTextFile(path, text.replace("servers: []", "servers: 3"));
    const bad = await fetch(`${base}/api/v1/reload`, { method: "POST" });
    assert.equal(bad.status, 422);
    const body = await bad.json();
    assert.equal(body.error.code, "invalid_config");
    assert.match(body.error.details[0], /appliance.yaml:2:24: servers must be a list/);
    assert.equal(appliance.model.pools.p.servers.length, 1);

    const plan = await fetch(`${base}/api/v1/plan`, { method: "POST", body: text });
    assert.deepEqual((await plan.json()).changes, ["~ pool p", "- server p 127.0.0.1:9"]);
    const status = await (await fetch(`${base}/api/v1/status`)).json();
    assert.deepEqual([status.reloads.ok, status.reloads.failed], [1, 1]);
  } finally {
    await appliance.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("write verbs need the bearer token when one is configured", async () => {
  const dir0 = await Deno.makeTempDir();
  const token = "s3cret-token-0123456789";
  await Deno.writeTextFile(`${dir0}/token`, token + "\n");
  const { dir, base, appliance } = await start(`, token_file: ${dir0}/token`);
  try {
    const denied = await fetch(`${base}/api/v1/reload`, { method: "POST" });
    assert.equal(denied.status, 401);
    assert.equal((await denied.json()).error.code, "unauthorized");
    const wrong = await fetch(`${base}/api/v1/reload`, {
      method: "POST",
      headers: { authorization: "Bearer nope" },
    });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const allowed = await fetch(`${base}/api/v1/reload`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(allowed.status, 200);
    await allowed.body?.cancel();
    const read = await fetch(`${base}/api/v1/status`);
    assert.equal(read.status, 200, "reads need no token");
    await read.body?.cancel();
  } finally {
    await appliance.stop();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(dir0, { recursive: true });
  }
});
