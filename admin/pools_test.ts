import assert from "node:assert/strict";
import { Hono } from "hono";
import { buildModel } from "../config/model.ts";
import { configSchema } from "../config/schema.ts";
import { createHealth } from "../health/mod.ts";
import { ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import { RoleBoard } from "../vrrp/role.ts";
import { mountPools } from "./pools.ts";

async function withAdmin(
  fn: (base: string, states: ServerStates) => Promise<void>,
): Promise<void> {
  const states = new ServerStates();
  const health = createHealth({
    states,
    roles: new RoleBoard(),
    log: createLogger({ write: () => {} }),
  });
  const config = configSchema.parse({
    pools: {
      html: {
        check: { type: "none" },
        servers: [{ address: "127.0.0.1:8101", weight: 2 }, { address: "127.0.0.1:8102" }],
      },
      v6: { check: { type: "none" }, servers: [{ address: "[::1]:8201" }] },
    },
  });
  await health.start(buildModel(config, { path: "t.yaml", hash: "0" }));
  const app = new Hono();
  mountPools(app, health);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, states);
  } finally {
    await server.shutdown();
    await health.stop();
  }
}

async function call(
  url: string,
  init: RequestInit = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.json() };
}

Deno.test("GET /api/v1/pools shows health, weights, admin state and last change", async () => {
  await withAdmin(async (base) => {
    const { status, body } = await call(`${base}/api/v1/pools`);
    assert.equal(status, 200);
    assert.deepEqual(body.pools.map((p: { name: string }) => p.name), ["html", "v6"]);
    const html = body.pools[0];
    assert.equal(html.check.type, "none");
    assert.equal(html.up, 2);
    const s = html.servers[0];
    assert.equal(s.address, "127.0.0.1:8101");
    assert.equal(s.health, "up");
    assert.equal(s.admin, "enabled");
    assert.deepEqual(s.weight, { configured: 2, override: null, dynamic: null, effective: 2 });
    assert.equal(s.last_check, null);
    assert.equal(s.last_change.reason, "no check");
    assert.ok(!Number.isNaN(Date.parse(s.last_change.at)));
  });
});

Deno.test("drain, disable and enable over the API change the shared server state", async () => {
  await withAdmin(async (base, states) => {
    const drain = await call(`${base}/api/v1/servers/html/127.0.0.1%3A8101/drain`, {
      method: "POST",
    });
    assert.equal(drain.status, 200);
    assert.equal(drain.body.server.admin, "drain");
    assert.equal(drain.body.server.weight.effective, 0);
    assert.equal(states.get("html", "127.0.0.1:8101")?.admin, "drain");
    assert.equal(states.get("html", "127.0.0.1:8101")?.reason, "admin drain");
    const disable = await call(`${base}/api/v1/servers/html/127.0.0.1:8102/disable`, {
      method: "POST",
    });
    assert.equal(disable.body.server.admin, "disabled");
    assert.equal(states.get("html", "127.0.0.1:8102")?.effectiveWeight, 0);
    const enable = await call(`${base}/api/v1/servers/html/127.0.0.1:8101/enable`, {
      method: "POST",
    });
    assert.equal(enable.body.server.admin, "enabled");
    assert.equal(states.get("html", "127.0.0.1:8101")?.effectiveWeight, 2);
    const v6 = await call(`${base}/api/v1/servers/v6/${encodeURIComponent("[::1]:8201")}/drain`, {
      method: "POST",
    });
    assert.equal(v6.status, 200);
    assert.equal(states.get("v6", "[::1]:8201")?.admin, "drain");
  });
});

Deno.test("PUT weight sets and clears an override; bad weights are 400", async () => {
  await withAdmin(async (base, states) => {
    const put = (body: string) =>
      call(`${base}/api/v1/servers/html/127.0.0.1:8102/weight`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body,
      });
    const set = await put('{"weight": 7}');
    assert.equal(set.status, 200);
    assert.deepEqual(set.body.server.weight, {
      configured: 1,
      override: 7,
      dynamic: null,
      effective: 7,
    });
    assert.equal(states.get("html", "127.0.0.1:8102")?.effectiveWeight, 7);
    for (
      const bad of [
        '{"weight": -1}',
        '{"weight": 1.5}',
        '{"weight": 70000}',
        '{"w": 1}',
        '{"weight": "3"}',
      ]
    ) {
      const r = await put(bad);
      assert.equal(r.status, 400, bad);
      assert.equal(r.body.error.code, "bad_weight");
      assert.match(r.body.error.message, /whole number from 0 to 65535/);
    }
    const notJson = await put("weight=3");
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.error.code, "bad_request");
    const clear = await put('{"weight": null}');
    assert.equal(clear.body.server.weight.effective, 1);
  });
});

Deno.test("unknown pools and servers are 404 with what exists", async () => {
  await withAdmin(async (base) => {
    const pool = await call(`${base}/api/v1/servers/imgs/127.0.0.1:8101/drain`, { method: "POST" });
    assert.equal(pool.status, 404);
    assert.equal(pool.body.error.code, "pool_not_found");
    assert.equal(pool.body.error.message, 'pool "imgs" is not defined; defined pools: html, v6');
    const server = await call(`${base}/api/v1/servers/html/127.0.0.1:9999/weight`, {
      method: "PUT",
      body: '{"weight": 1}',
    });
    assert.equal(server.status, 404);
    assert.equal(server.body.error.code, "server_not_found");
    assert.match(server.body.error.message, /its servers: 127\.0\.0\.1:8101, 127\.0\.0\.1:8102$/);
    const verb = await fetch(`${base}/api/v1/servers/html/127.0.0.1:8101/explode`, {
      method: "POST",
    });
    assert.equal(verb.status, 404);
    await verb.body?.cancel();
  });
});
