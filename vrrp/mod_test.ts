import assert from "node:assert/strict";
import { Hono } from "hono";
import { buildModel } from "../config/model.ts";
import { configSchema } from "../config/schema.ts";
import { type ServerState, ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import type { AdminEnv } from "../subsystem.ts";
import { Rtnl } from "../sys/rtnl.ts";
import { ifNameToIndex } from "../sys/libc.ts";
import { canUseNetns, inNetnsChild, runFileInNetns } from "../tests/netns.ts";
import { diff } from "../config/diff.ts";
import { createVrrp } from "./mod.ts";
import { RoleBoard } from "./role.ts";

const inChild = inNetnsChild(import.meta.url);
const canNetns = !inChild && await canUseNetns();
const quiet = createLogger({ write: () => {} });

function model(vrrp: Record<string, unknown>, pools: Record<string, unknown> = {}) {
  return buildModel(configSchema.parse({ vrrp, pools }), { path: "test.yaml", hash: "x" });
}

function deps() {
  return { states: new ServerStates(), roles: new RoleBoard(), log: quiet };
}

Deno.test("without instances or with vrrp disabled the subsystem reports disabled", async () => {
  const v = createVrrp(deps());
  await v.start(model({}));
  assert.equal(v.status().state, "disabled");
  await v.stop();
  const off = createVrrp(deps());
  await off.start(model({
    enabled: false,
    instances: [{ name: "a", interface: "nosuch0", vrid: 1, virtual_ipaddress: ["10.0.0.1/24"] }],
  }));
  assert.equal(off.status().state, "disabled");
  assert.match(String(off.status().detail), /enabled is false/);
});

Deno.test({
  name: "a missing interface fails start with its name and the subsystem reports failed",
  ignore: Deno.uid?.() !== 0,
}, async () => {
  const v = createVrrp(deps());
  await assert.rejects(
    () =>
      v.start(model({
        instances: [{
          name: "a",
          interface: "nosuch0",
          vrid: 1,
          virtual_ipaddress: ["10.0.0.1/24"],
        }],
      })),
    /interface "nosuch0" does not exist/,
  );
  assert.equal(v.status().state, "failed");
});

Deno.test({
  name: "subsystem behaviour passes inside a fresh network namespace",
  ignore: !canNetns,
}, async () => {
  const r = await runFileInNetns(import.meta.url, { prefix: "fvm", timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /alone on a LAN.* \.\.\. ok/);
  assert.match(r.stdout, /tracked interface .* \.\.\. ok/);
});

async function ip(args: string[]): Promise<void> {
  const r = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!r.success) throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
}

async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 5000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function server(pool: string, up: boolean): ServerState {
  return {
    pool,
    address: "127.0.0.1:9",
    health: up ? "up" : "down",
    admin: "enabled",
    configuredWeight: 1,
    effectiveWeight: up ? 1 : 0,
    reason: "test",
    since: 0,
  };
}

Deno.test({
  name:
    "alone on a LAN: master, VIPs on, pool tracking faults and weights, sync group, notify, admin, stop",
  ignore: !inChild,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await ip(["link", "add", "fva0", "type", "veth", "peer", "name", "fvb0"]);
  await ip(["addr", "add", "10.9.0.1/24", "dev", "fva0"]);
  await ip(["link", "set", "fva0", "up"]);
  await ip(["link", "set", "fvb0", "up"]);
  const dir = await Deno.makeTempDir();
  const rtnl = new Rtnl();
  const d = deps();
  const vrrp = createVrrp(d);
  try {
    const hook = `${dir}/hook.sh`;
    await Deno.writeTextFile(hook, `#!/bin/sh\necho "$1 $2 $3" >> ${dir}/notify.log\n`);
    await Deno.chmod(hook, 0o755);
    d.states.set(server("web", true));
    d.states.set(server("api", true));
    const index = ifNameToIndex("fva0");
    // a VIP left behind by a crashed run is cleaned up at start
    await rtnl.addAddress(index, { address: "10.9.0.100", prefix: 24 });
    const inst = (name: string, vrid: number, vip: string, track: unknown) => ({
      name,
      interface: "fva0",
      vrid,
      priority: 100,
      advert_interval: "100ms",
      virtual_ipaddress: [vip],
      notify: [hook],
      track,
    });
    const pool = { servers: [{ address: "127.0.0.1:9" }] };
    await vrrp.start(model({
      instances: [
        inst("a", 1, "10.9.0.100/24", { pools: ["web"] }),
        inst("b", 2, "10.9.0.101/24", { pools: [{ pool: "api", weight: -50 }] }),
      ],
      sync_groups: [{ name: "g", instances: ["a", "b"] }],
    }, { web: pool, api: pool }));
    assert.equal(d.roles.get("a"), "backup");
    const vips = async () =>
      (await rtnl.addresses(index)).map((a) => a.address).filter((a) =>
        a.endsWith(".100") || a.endsWith(".101")
      )
        .sort();
    await waitFor(
      () => d.roles.get("a") === "master" && d.roles.get("b") === "master",
      "both master",
    );
    await waitFor(async () => (await vips()).join() === "10.9.0.100,10.9.0.101", "VIPs added");

    // pool web loses its last server: a faults, the sync group takes b along
    d.states.set(server("web", false));
    assert.equal(d.roles.get("a"), "fault");
    assert.equal(d.roles.get("b"), "fault");
    await waitFor(async () => (await vips()).length === 0, "VIPs removed on fault");
    d.states.set(server("web", true));
    await waitFor(
      () => d.roles.get("a") === "master" && d.roles.get("b") === "master",
      "both master again",
    );

    // a weighted pool only lowers the priority
    d.states.set(server("api", false));
    const b = vrrp.list().find((i) => i.name === "b")!;
    assert.equal(b.priority, 50);
    assert.equal(b.configuredPriority, 100);
    assert.equal(b.state, "master");

    // admin routes
    const app = new Hono<AdminEnv>();
    vrrp.routes!(app);
    const got = await (await app.request("/api/v1/vrrp")).json();
    assert.deepEqual(got.instances.map((i: { name: string; state: string }) => [i.name, i.state]), [
      ["a", "master"],
      ["b", "master"],
    ]);
    assert.ok(got.instances[0].advertsOut > 0);
    assert.match(got.instances[0].lastTransition.reason, /master/);
    assert.equal((await app.request("/api/v1/vrrp/zzz/stepdown", { method: "POST" })).status, 404);
    const down = await app.request("/api/v1/vrrp/a/stepdown", { method: "POST" });
    assert.equal(down.status, 200);
    assert.equal(d.roles.get("a"), "backup");
    assert.equal(d.roles.get("b"), "backup", "sync group follows a step down");
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(d.roles.get("a"), "backup", "a stepped-down instance stays backup");
    await app.request("/api/v1/vrrp/a/rejoin", { method: "POST" });
    await waitFor(
      () => d.roles.get("a") === "master" && d.roles.get("b") === "master",
      "master after rejoin",
    );
    const metrics = vrrp.metrics!();
    assert.match(metrics, /fulcrum_vrrp_state\{instance="a",state="master"\} 1/);
    assert.match(metrics, /fulcrum_vrrp_priority\{instance="b"\} 50/);
    assert.match(metrics, /fulcrum_vrrp_timer_lateness_seconds_count\{instance="a"\} \d+/);

    // bad bytes injected into the receive path are counted, the state does not move
    const a = vrrp.instances().get("a")!;
    a.inject("10.9.0.7", new Uint8Array([0x45, 0, 0, 20]));
    a.inject("10.9.0.7", new Uint8Array(10));
    assert.equal(a.status().errors.truncated, 2);
    assert.equal(a.status().state, "master");

    await vrrp.stop();
    assert.deepEqual(await vips(), [], "VIPs removed on stop");
    assert.equal(d.roles.get("a"), "init");
    const log = (await Deno.readTextFile(`${dir}/notify.log`)).trim().split("\n");
    const ofA = log.filter((l) => l.split(" ")[1] === "a").map((l) => l.split(" ")[0]);
    assert.deepEqual(ofA.slice(0, 4), ["BACKUP", "MASTER", "FAULT", "BACKUP"]);
  } finally {
    await vrrp.stop();
    rtnl.close();
    await Deno.remove(dir, { recursive: true });
    await ip(["link", "del", "fva0"]).catch(() => {});
  }
});

Deno.test({
  name:
    "a tracked interface going down faults the instance; reload adds, changes and removes instances",
  ignore: !inChild,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await ip(["link", "add", "fve0", "type", "veth", "peer", "name", "fvf0"]);
  await ip(["link", "add", "fvc0", "type", "veth", "peer", "name", "fvd0"]);
  await ip(["addr", "add", "10.8.0.1/24", "dev", "fve0"]);
  for (const l of ["fve0", "fvf0", "fvc0", "fvd0"]) await ip(["link", "set", l, "up"]);
  const rtnl = new Rtnl();
  const d = deps();
  const vrrp = createVrrp(d);
  const index = ifNameToIndex("fve0");
  const vips = async () =>
    (await rtnl.addresses(index)).map((a) => a.address).filter((a) =>
      a.startsWith("10.8.0.") && a !== "10.8.0.1"
    ).sort();
  const inst = (
    name: string,
    vrid: number,
    priority: number,
    extra: Record<string, unknown> = {},
  ) => ({
    name,
    interface: "fve0",
    vrid,
    priority,
    advert_interval: "100ms",
    virtual_ipaddress: [`10.8.0.${100 + vrid}/24`],
    ...extra,
  });
  try {
    const first = model({
      instances: [inst("c", 1, 100, { track: { interfaces: ["fvc0"] } }), inst("e", 2, 100)],
    });
    await vrrp.start(first);
    await waitFor(
      () => d.roles.get("c") === "master" && d.roles.get("e") === "master",
      "both master",
    );
    await ip(["link", "set", "fvc0", "down"]);
    await waitFor(() => d.roles.get("c") === "fault", "fault on tracked interface down");
    assert.deepEqual(vrrp.list().find((i) => i.name === "c")!.faults, ["interface fvc0"]);
    assert.equal(vrrp.status().state, "degraded");
    await waitFor(async () => (await vips()).join() === "10.8.0.102", "c's VIP removed");
    await ip(["link", "set", "fvc0", "up"]);
    await waitFor(() => d.roles.get("c") === "master", "master again when the interface is back");

    // reload: e removed (VIP released), f added, c changed (priority)
    const secondInstances = [
      inst("c", 1, 150, { track: { interfaces: ["fvc0"] } }),
      inst("f", 3, 100),
    ];
    const second = model({ instances: secondInstances });
    const transitionsOfC = vrrp.list().find((i) => i.name === "c")!.transitions;
    await vrrp.apply(second, diff(first, second));
    assert.equal(d.roles.get("e"), "init");
    const c = vrrp.list().find((i) => i.name === "c")!;
    assert.equal(
      c.transitions,
      transitionsOfC,
      "a priority change is applied in place, without re-election",
    );
    assert.equal(c.state, "master");
    await waitFor(
      () => d.roles.get("c") === "master" && d.roles.get("f") === "master",
      "c and f master",
    );
    assert.equal(vrrp.list().find((i) => i.name === "c")!.priority, 150);
    await waitFor(
      async () => (await vips()).join() === "10.8.0.101,10.8.0.103",
      "VIPs follow the reload",
    );
    const off = model({ enabled: false, instances: secondInstances });
    await vrrp.apply(off, diff(second, off));
    assert.equal(vrrp.status().state, "disabled");
    assert.deepEqual(await vips(), []);
  } finally {
    await vrrp.stop();
    rtnl.close();
    await ip(["link", "del", "fve0"]).catch(() => {});
    await ip(["link", "del", "fvc0"]).catch(() => {});
  }
});
