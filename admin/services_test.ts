import assert from "node:assert/strict";
import { Hono } from "hono";
import type { AdminEnv } from "../subsystem.ts";
import type { ServiceView } from "../l4/dataplane.ts";
import { mountServiceRoutes, servicesMetrics } from "./services.ts";

const zero = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
const view: ServiceView = {
  name: "web",
  protocol: "tcp",
  vip: "127.0.0.1:8090",
  scheduler: "wlc",
  flags: [],
  dests: [{
    address: "127.0.0.1:8101",
    forward: "local",
    weight: 2,
    activeConns: 3,
    inactiveConns: 1,
    persistentConns: 0,
    stats: { conns: 7, inPkts: 10, outPkts: 12, inBytes: 700, outBytes: 9000 },
    rates: { ...zero, cps: 1 },
  }],
  stats: { conns: 7, inPkts: 10, outPkts: 12, inBytes: 700, outBytes: 9000 },
  rates: { ...zero, cps: 1 },
};

Deno.test("GET /api/v1/services returns every service with its servers, stats and rates", async () => {
  const app = new Hono<AdminEnv>();
  mountServiceRoutes(app, { services: () => [view] });
  const res = await app.request("/api/v1/services");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), [view]);
});

Deno.test("a failing data plane answers 503 with a JSON error that says where to look", async () => {
  const app = new Hono<AdminEnv>();
  mountServiceRoutes(app, { services: () => Promise.reject(new Error("netlink EPERM")) });
  const res = await app.request("/api/v1/services");
  assert.equal(res.status, 503);
  const body = await res.json();
  assert.equal(body.error.code, "dataplane_error");
  assert.match(body.error.message, /netlink EPERM/);
});

Deno.test("metrics carry per-service and per-server counters and drops by reason", () => {
  const text = servicesMetrics([view], {
    drops: {
      services: { web: { per_source: 4 } },
      servers: { web: { "127.0.0.1:8101": { connect_error: 2 } } },
    },
    splice: { active: 1, opened: 5, refused: 2 },
  });
  assert.match(text, /^fulcrum_l4_splice_opened_total 5$/m);
  assert.match(text, /^fulcrum_l4_splice_refused_total 2$/m);
  assert.match(text, /^fulcrum_l4_connections_total\{service="web"\} 7$/m);
  assert.match(
    text,
    /^fulcrum_l4_server_out_bytes_total\{service="web",server="127.0.0.1:8101"\} 9000$/m,
  );
  assert.match(
    text,
    /^fulcrum_l4_server_active_connections\{service="web",server="127.0.0.1:8101"\} 3$/m,
  );
  assert.match(text, /^fulcrum_l4_drops_total\{service="web",reason="per_source"\} 4$/m);
  assert.match(
    text,
    /^fulcrum_l4_server_drops_total\{service="web",server="127.0.0.1:8101",reason="connect_error"\} 2$/m,
  );
  assert.match(text, /^# TYPE fulcrum_l4_server_weight gauge$/m);
});
