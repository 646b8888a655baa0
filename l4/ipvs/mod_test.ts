import assert from "node:assert/strict";
import { buildModel } from "../../config/model.ts";
import { configSchema } from "../../config/schema.ts";
import { ServerStates } from "../../health/state.ts";
import { createLogger } from "../../log.ts";
import { RoleBoard } from "../../vrrp/role.ts";
import { createIpvsDataplane, ipvsAvailable, wantedDaemon } from "./mod.ts";

async function ipvsLoaded(): Promise<boolean> {
  try {
    await Deno.stat("/proc/net/ip_vs");
    return true;
  } catch {
    return false;
  }
}

const model = buildModel(
  configSchema.parse({
    pools: { p: { servers: [{ address: "10.0.1.1:80" }] } },
    l4: {
      dataplane: "ipvs",
      services: [{ name: "web", vip: "10.0.0.1:80", pool: "p" }],
      sync_daemon: { interface: "eth1", sync_id: 4 },
    },
  }),
  { path: "t.yaml", hash: "0" },
);

Deno.test("ipvsAvailable answers without throwing, true exactly when the kernel has ip_vs", async () => {
  const available = await ipvsAvailable();
  assert.equal(available, await ipvsLoaded());
});

Deno.test("dataplane ipvs on a kernel without IPVS fails to start with a clear way out", async (t) => {
  if (await ipvsLoaded()) {
    console.log("skipped: this kernel has ip_vs loaded (the VM suite covers that case)");
    return;
  }
  const plane = createIpvsDataplane({
    states: new ServerStates(),
    roles: new RoleBoard(),
    log: createLogger({ write: () => {} }),
  });
  assert.equal(plane.kind, "ipvs");
  await t.step("start", async () => {
    await assert.rejects(
      plane.start(model),
      /l4\.dataplane is ipvs but IPVS cannot be used: the kernel has no IPVS .*modprobe ip_vs.*l4\.dataplane: userspace/,
    );
  });
  assert.deepEqual(await plane.services(), []);
  assert.equal(plane.status().dataplane, "ipvs");
  await plane.stop();
});

Deno.test("the sync daemon runs as master without VRRP, and follows the VRRP role with it", () => {
  assert.deepEqual(wantedDaemon(model, false), { state: "master", interface: "eth1", syncId: 4 });
  const withVrrp = { ...model, vrrp: { ...model.vrrp, instances: [{ name: "vi" } as never] } };
  assert.equal(wantedDaemon(withVrrp, false)?.state, "backup");
  assert.equal(wantedDaemon(withVrrp, true)?.state, "master");
  const noSync = { ...model, l4: { ...model.l4, sync_daemon: undefined } };
  assert.equal(wantedDaemon(noSync, true), undefined);
});
