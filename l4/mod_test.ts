import assert from "node:assert/strict";
import { Hono } from "hono";
import { configSchema } from "../config/schema.ts";
import { buildModel, type Model } from "../config/model.ts";
import { diff } from "../config/diff.ts";
import { ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import { RoleBoard } from "../vrrp/role.ts";
import type { AdminEnv, SubsystemDeps } from "../subsystem.ts";
import type { Dataplane } from "./dataplane.ts";
import { createL4 } from "./mod.ts";
import { freePort } from "../tests/cli.ts";

function model(dataplane: string, port: number, weight = 1): Model {
  return buildModel(
    configSchema.parse({
      pools: { web: { servers: [{ address: "127.0.0.1:1", weight }] } },
      l4: { dataplane, services: [{ name: "svc", vip: `127.0.0.1:${port}`, pool: "web" }] },
    }),
    { path: "t.yaml", hash: "0" },
  );
}

function deps(lines: string[] = []): SubsystemDeps {
  return {
    states: new ServerStates(),
    roles: new RoleBoard(),
    log: createLogger({ write: (l) => lines.push(l) }),
  };
}

/** A kernel plane stand-in that records what it is told. */
function recordingPlane(calls: string[]): Dataplane {
  return {
    kind: "ipvs",
    start: () => {
      calls.push("start");
      return Promise.resolve();
    },
    apply: () => Promise.resolve(),
    serverChanged: (pool, address) => {
      calls.push(`changed ${pool}/${address}`);
    },
    stop: () => {
      calls.push("stop");
      return Promise.resolve();
    },
    services: () => [],
    status: () => ({}),
  };
}

Deno.test("auto uses userspace when the kernel has no IPVS, and says so", async () => {
  const lines: string[] = [];
  const port = freePort();
  const l4 = createL4(deps(lines), {
    ipvs: { available: () => Promise.resolve(false), create: () => recordingPlane([]) },
  });
  await l4.start(model("auto", port));
  try {
    assert.equal(l4.dataplane()?.kind, "userspace");
    assert.equal(l4.status().dataplane, "userspace");
    assert.match(String(l4.status().reason), /no IPVS/);
    assert.ok(lines.some((l) => l.includes("dataplane=userspace")));
  } finally {
    await l4.stop();
  }
  assert.equal(l4.status().state, "stopped");
});

Deno.test("dataplane ipvs without IPVS fails with what to do", async () => {
  const l4 = createL4(deps(), {
    ipvs: { available: () => Promise.resolve(false), create: () => recordingPlane([]) },
  });
  await assert.rejects(() => l4.start(model("ipvs", 1)), /set l4\.dataplane: userspace/);
  assert.equal(l4.status().state, "failed");
});

Deno.test("auto uses the kernel plane when available and forwards server changes", async () => {
  const calls: string[] = [];
  const d = deps();
  const l4 = createL4(d, {
    ipvs: { available: () => Promise.resolve(true), create: () => recordingPlane(calls) },
  });
  await l4.start(model("auto", 1));
  d.states.set({
    pool: "web",
    address: "127.0.0.1:1",
    health: "down",
    admin: "enabled",
    configuredWeight: 1,
    effectiveWeight: 0,
    reason: "refused",
    since: 0,
  });
  await l4.stop();
  assert.deepEqual(calls, ["start", "changed web/127.0.0.1:1", "stop"]);
});

Deno.test("the admin route lists the userspace services and metrics name them", async () => {
  const port = freePort();
  const l4 = createL4(deps());
  const m = model("userspace", port);
  await l4.start(m);
  try {
    const app = new Hono<AdminEnv>();
    l4.routes!(app);
    const res = await app.request("/api/v1/services");
    const body = await res.json();
    assert.equal(body[0].name, "svc");
    assert.equal(body[0].vip, `127.0.0.1:${port}`);
    assert.equal(body[0].dests[0].address, "127.0.0.1:1");
    assert.match(l4.metrics!(), /fulcrum_l4_server_weight\{service="svc",server="127.0.0.1:1"\} 1/);
    assert.match(l4.metrics!(), /^fulcrum_l4_splice_active 0$/m);
    const splice = l4.status().splice as { max: number; available: boolean };
    assert.equal(splice.max > 0, true);
    assert.equal(typeof splice.available, "boolean");
    const next = model("userspace", port, 5);
    await l4.apply(next, diff(m, next));
    assert.match(l4.metrics!(), /fulcrum_l4_server_weight\{service="svc",server="127.0.0.1:1"\} 5/);
  } finally {
    await l4.stop();
  }
});
